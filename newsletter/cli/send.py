"""``newsletter send``: show the audience, then send (or continue) through the ledger."""

from __future__ import annotations

import typer

from ..errors import UserError
from .common import ConfigOption, JsonOption, config, console, print_json, summary_table


def _show_plan(plan, backend: str) -> None:
    head = {"real": "send", "resend": "second copy to non-openers", "test": "test copy"}[plan.kind]
    what = f"continuing send {plan.resume_id}" if plan.resume_id else f"new {head}"
    console.print(f"[bold]{plan.issue}[/] via [bold]{backend}[/]: {what}, {plan.to_send} recipients"
                  + (f" (audience {plan.audience}, {plan.already} already have it)" if plan.kind != "test" else ""))
    if plan.by_variant:
        summary_table("per variant", sorted(plan.by_variant.items()), ("variant", "recipients"))
        summary_table("per tier", sorted(plan.by_tier.items()), ("tier", "recipients"))
    if plan.attention:
        summary_table(
            "key customers needing attention",
            [(a["email"], a["name"], a["company"], a["owner"], a["reason"]) for a in plan.attention],
            ("address", "name", "company", "owner", "reason"),
        )
    if plan.nothing:
        console.print(f"nothing to send: {plan.nothing}")


def _show_result(r: SendResult) -> None:
    rows = [("sent in this run", r.sent_now)] + [(k, v) for k, v in r.counts.items() if v or k in ("sent", "pending")]
    if r.recovered:
        rows.append(("found sent after a crash", r.recovered))
    summary_table(f"send {r.send_id} of {r.issue} ({r.kind}, {r.backend})", rows, ("state", "recipients"))
    for note in r.notes:
        console.print(f"• {note}")
    if r.unknown:
        console.print(f"[yellow]{len(r.unknown)} outcome unknown[/] (not resent; see docs/sending.md): "
                      + ", ".join(r.unknown[:10]) + (" …" if len(r.unknown) > 10 else ""))
    for address, error in r.failed[:10]:
        console.print(f"[red]failed[/] {address}: {error}")
    if r.paused:
        console.print(f"[red]paused:[/] {r.paused} — fix the cause, then run the same command again")
    elif r.interrupted:
        console.print("stopped on Ctrl-C; the rest is pending — run the same command again to continue")
    elif r.done:
        console.print("[green]done[/]")
    elif r.counts.get("pending"):
        console.print(f"{r.counts['pending']} still pending — run the same command again to continue")


def _cancel(cfg, issue: str, as_json: bool) -> None:
    """``--cancel``: SendGrid discards the scheduled send at its send_at; the ledger rows become cancelled."""
    from ..db import get_engine
    from ..send.backends.sendgrid import cancel_scheduled
    from ..send.schedule import fmt_local, zone

    done = cancel_scheduled(cfg, get_engine(cfg), issue)
    if as_json:
        print_json(done.as_dict())
        return
    when = f", scheduled for {fmt_local(done.scheduled_for.astimezone(zone(cfg)))}" if done.scheduled_for else ""
    console.print(f"cancelled send {done.send_id} of [bold]{issue}[/] (SendGrid batch {done.batch_id}{when}): "
                  f"{done.recipients} recipients now [magenta]cancelled[/]; `newsletter send {issue}` sends afresh")


def register(app: typer.Typer) -> None:
    @app.command()
    def send(
        issue: str = typer.Argument(..., help="Issue id, e.g. 2026-11."),
        backend: str = typer.Option(None, "--backend", help="outbox | smtp | sendgrid (default: send.backend)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Show the audience and stop."),
        test: str = typer.Option(None, "--test", metavar="ADDR", help="Send one [TEST] copy to ADDR (not the real send)."),
        resend_to: str = typer.Option(None, "--resend-to", help="non-openers: a second copy to those with no human open."),
        retry_unknown: bool = typer.Option(False, "--retry-unknown", help="Resend rows whose outcome was unknown (may duplicate)."),
        cancel: bool = typer.Option(False, "--cancel", help="Cancel the issue's send scheduled at SendGrid (send_at) before it leaves."),
        config_path: str = ConfigOption,
        as_json: bool = JsonOption,
    ) -> None:
        """Send an issue to the clean audience, exactly once each; run again to continue after a crash."""
        from ..send.runner import SendResult, execute, plan_send

        cfg = config(config_path)
        if cancel:
            if dry_run or test or resend_to or retry_unknown:
                raise UserError("--cancel goes alone (with --config / --json)")
            return _cancel(cfg, issue, as_json)
        name = backend or cfg.send.backend
        plan = plan_send(cfg, issue, test_address=test, resend_to=resend_to, progress=not as_json)
        if not as_json:
            _show_plan(plan, name)
        if dry_run:
            result = SendResult(issue, plan.kind, name, plan, dry_run=True)
        else:
            result = execute(cfg, plan, backend=name, progress=not as_json, retry_unknown=retry_unknown)
            if not as_json and (result.send_id or result.notes):
                _show_result(result)
        if as_json:
            print_json(result.as_dict())
        if result.paused:
            raise typer.Exit(3)
