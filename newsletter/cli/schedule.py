"""``newsletter schedule`` (the next dates and what each sends) and ``newsletter send-due`` (for cron/timers)."""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from ..send import schedule as stage
from . import common

STATE_STYLE = {
    "sent": "green",
    "due": "bold yellow",
    "upcoming": "cyan",
    "refused: quiet hours": "bold red",
    "missed": "red",
    "error": "bold red",
    "cancelled": "magenta",
    "paused": "bold magenta",
    "no issue yet": "dim",
}

NowOption = typer.Option(None, "--now", hidden=True, help="Evaluate at this ISO instant (testing).")


def _entries_table(plan: stage.Plan) -> Table:
    table = Table(
        title=f"{plan.rule or '(no rule)'} ({plan.timezone}) · quiet hours {plan.quiet_hours or 'off'}"
        f" · holidays {'skipped' if plan.skip_holidays else 'kept'}",
        title_justify="left",
    )
    zone_name = plan.entries[0].slot.local.tzname() if plan.entries else ""
    table.add_column(f"when ({zone_name})", no_wrap=True)
    table.add_column("issue", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("note", overflow="fold")
    for e in plan.entries:
        note = e.note
        if e.slot.moved_from:
            note = f"moved from {stage.fmt_local(e.slot.moved_from, zone_name=False)}: {e.slot.moved_because}" + (f"; {note}" if note else "")
        elif e.slot.issue:
            note = "send_at in the issue" + (f"; {note}" if note else "")
        issue = (e.issue or "—") + (" (광고)" if e.ad else "")
        style = STATE_STYLE.get(e.state, "")
        table.add_row(stage.fmt_local(e.slot.local, zone_name=False), issue, f"[{style}]{e.state}[/]" if style else e.state, note)
    return table


def register(app: typer.Typer) -> None:
    @app.command("schedule")
    def schedule_cmd(
        count: int = typer.Option(6, "--count", "-n", min=1, help="How many upcoming dates to list."),
        json_out: bool = common.JsonOption,
        now: str = NowOption,
        config_path: str = common.ConfigOption,
    ) -> None:
        """List the next send dates, which issue each sends, and its state (sent / due / upcoming / refused)."""
        cfg = common.config(config_path)
        plan = stage.plan(cfg, now=stage.parse_now(now, cfg), count=count)
        if json_out:
            common.print_json(plan.as_json())
            return
        common.console.print(_entries_table(plan))
        for e in plan.entries:
            if e.state in ("refused: quiet hours", "error"):
                common.err_console.print(f"[bold red]{e.state}[/]: {e.note}", highlight=False)

    @app.command("send-due")
    def send_due_cmd(
        backend: str = typer.Option(None, "--backend", help="outbox | smtp | sendgrid (default: send.backend)."),
        json_out: bool = common.JsonOption,
        now: str = NowOption,
        config_path: str = common.ConfigOption,
    ) -> None:
        """Send whatever is due and not yet sent; safe from cron or a systemd timer, and twice at once."""
        cfg = common.config(config_path)
        result = stage.send_due(
            cfg, now=stage.parse_now(now, cfg), backend=backend, progress=common.console.is_terminal and not json_out
        )
        if json_out:
            common.print_json(result.as_json())
        else:
            _print_due(result, cfg)
        if not result.ok:
            raise SystemExit(1)  # cron and systemd see the refusal or failure (typer.Exit's code is lost in main)


def _print_due(result: stage.DueResult, cfg) -> None:
    """One line when nothing happened (cron logs stay short), a table when something was sent or refused."""
    stamp = stage.fmt_local(result.now.astimezone(stage.zone(cfg)))
    if not result.ran:
        common.console.print(f"{stamp} send-due: another run holds the lock ({result.holder}); it does the work",
                             soft_wrap=True, highlight=False)
        return
    nxt = result.next_slot
    following = f"next: {stage.fmt_local(nxt.slot.local)} {nxt.issue or 'no issue yet'}" if nxt else "no next slot"
    if not result.outcomes:
        common.console.print(f"{stamp} send-due: nothing due; {following}", soft_wrap=True, highlight=False)
        return
    table = Table(title=f"{stamp} send-due", title_justify="left")
    table.add_column("issue", no_wrap=True)
    table.add_column("slot", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for o in result.outcomes:
        table.add_row(o.issue, o.when, o.state, _describe(o))
    common.console.print(table)
    for o in result.outcomes:
        if o.state != "sent":
            print(f"{o.state}: {o.issue}: {o.message}", file=sys.stderr)
    common.console.print(following, highlight=False)


def _describe(outcome: stage.DueOutcome) -> str:
    if outcome.state != "sent":
        return outcome.message
    counts = getattr(outcome.result, "counts", None) or {}
    figures = ", ".join(f"{state} {n}" for state, n in counts.items() if n)
    return "; ".join(x for x in (f"send #{outcome.result.send_id}" if outcome.result else "", figures, outcome.message) if x)
