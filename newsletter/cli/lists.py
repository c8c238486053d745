"""``newsletter lists clean|unsuppress`` and ``newsletter bounces scan|ingest``: parse, call the stage, print."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer
from rich.table import Table

from .common import ConfigOption, JsonOption, config, console, err_console, print_json, summary_table

MAX_WARNINGS = 20  # on the terminal; all of them are in rejected.csv / summary.json
MAX_REPAIRS_SHOWN = 15  # on the terminal; all of them are in repairs.csv


def _warn(lines: list[str]) -> None:
    for line in lines[:MAX_WARNINGS]:
        err_console.print(f"[yellow]warning:[/] {line}", highlight=False, soft_wrap=True)
    if len(lines) > MAX_WARNINGS:
        err_console.print(f"[yellow]warning:[/] … and {len(lines) - MAX_WARNINGS} more like these (see rejected.csv)")


def _show_clean(result, paths: dict[str, Path]) -> None:
    s = result.summary
    rows = [("rows read", s["rows"])] + [(f"  {k}", v) for k, v in sorted(s["verdict"].items())]
    rows += [(f"  invalid: {k}", v) for k, v in sorted(s["invalid_reason"].items())]
    rows += [("addresses repaired", s["repairs"]), ("unique addresses", s["unique_addresses"]),
             ("audience", s["deliverable"]), ("  of them key", s["deliverable_key"]),
             ("key customers on roster", s["roster_customers"]),
             ("key customers needing attention", len(result.attention))]
    console.print(f"{s['file']} ({s['encoding']})", highlight=False)
    summary_table("lists clean", rows)
    repairs = result.repairs
    for r in repairs[:MAX_REPAIRS_SHOWN]:
        console.print(f"repaired row {r.index}: {r.repaired_from} → {r.canonical}", highlight=False)
    if len(repairs) > MAX_REPAIRS_SHOWN:
        console.print(f"… {len(repairs) - MAX_REPAIRS_SHOWN} more repairs in repairs.csv")
    if s["domain_holds"]:
        console.print(f"[yellow]domains on hold[/] (not mailed): {', '.join(s['domain_holds'])}")
    by_owner: dict[str, list] = {}
    for a in result.attention:
        by_owner.setdefault(a.owner or "(no owner)", []).append(a)
    if by_owner:
        console.print(f"[bold red]{len(result.attention)} key customer(s) will NOT receive this send[/] — by owner:")
        for owner in sorted(by_owner):
            console.print(f"[bold]{owner}[/]", highlight=False)
            for a in by_owner[owner]:
                who = a.name + (f" ({a.company})" if a.company else "")
                console.print(f"  • [bold]{a.reason}[/] {a.email} {who} — {a.detail}", highlight=False)
    else:
        console.print("[green]every key customer on the roster receives this send[/]")
    console.print("written: " + ", ".join(str(p) for p in paths.values()), highlight=False)


def register(app: typer.Typer) -> None:
    lists_app = typer.Typer(help="List hygiene: clean the audience, account for key customers.", no_args_is_help=True)
    bounces_app = typer.Typer(help="Classify and record bounce messages.", no_args_is_help=True)
    app.add_typer(lists_app, name="lists")
    app.add_typer(bounces_app, name="bounces")

    @lists_app.command("clean")
    def clean(
        subscribers: Path = typer.Option(None, "--subscribers", help="Subscriber list (.csv or .xlsx)."),
        key_customers: Path = typer.Option(None, "--key-customers", help="CRM roster of key accounts."),
        suppressions: Path = typer.Option(None, "--suppressions", help="suppressions.csv (email,reason,at)."),
        encoding: str = typer.Option(None, "--encoding", help="Force the CSV encoding (default: detect UTF-8/CP949)."),
        out: Path = typer.Option(None, "--out", help="Output folder (default: lists.out)."),
        check_mx: bool = typer.Option(False, "--check-mx", help="Also reject domains that receive no mail (DNS)."),
        config_path: str = ConfigOption,
        as_json: bool = JsonOption,
    ) -> None:
        """Normalize, repair, dedupe and suppress the list; write audience, attention, rejected, repairs, summary."""
        from ..lists import clean_lists, write_outputs

        cfg = config(config_path)
        result = clean_lists(cfg, subscribers=subscribers, key_customers=key_customers, suppressions=suppressions,
                             encoding=encoding, progress=not as_json, check_mx=check_mx)
        paths = write_outputs(result, out or cfg.path(cfg.lists.out))
        _warn(result.warnings)
        if as_json:
            print_json({"summary": result.summary, "files": {k: str(v) for k, v in paths.items()},
                        "attention": [_attention(a) for a in result.attention],
                        "warnings": result.warnings})
        else:
            _show_clean(result, paths)

    @lists_app.command("unsuppress")
    def unsuppress_cmd(
        address: str = typer.Argument(..., help="The address to mail again (or @domain to release a domain hold)."),
        reason: str = typer.Option(..., "--reason", help="Why; kept in the suppression history."),
        config_path: str = ConfigOption,
    ) -> None:
        """Lift a suppression recorded in the database, keeping its history."""
        from .. import db
        from ..bounces import unsuppress

        cfg = config(config_path)
        n = unsuppress(db.get_engine(cfg), address, reason)
        console.print(f"{address}: {n} suppression(s) lifted ({reason})", highlight=False)

    @bounces_app.command("scan")
    def scan_cmd(
        paths: list[Path] = typer.Argument(..., help=".eml files, folders, mbox files or Maildirs."),
        as_json: bool = JsonOption,
    ) -> None:
        """Classify bounce messages without recording anything."""
        from ..bounces import scan

        results = scan(paths)
        if as_json:
            print_json([{k: r[k] for k in ("file", "recipient", "kind", "status", "diagnostic")} for r in results])
            return
        table = Table(title=f"{len(results)} message result(s)", title_justify="left")
        for col in ("file", "recipient", "kind", "status", "diagnostic"):
            table.add_column(col, overflow="fold")
        for r in results:
            table.add_row(Path(r["file"]).name, r["recipient"] or "", r["kind"], r["status"] or "",
                          (r["diagnostic"] or "")[:100])
        console.print(table)
        summary_table("by kind", sorted(Counter(r["kind"] for r in results).items()), ("kind", "count"))

    @bounces_app.command("ingest")
    def ingest_cmd(
        paths: list[Path] = typer.Argument(..., help=".eml files, folders, mbox files or Maildirs."),
        send: int = typer.Option(None, "--send", help="The send these bounces answer (enables domain-block checks)."),
        issue: str = typer.Option(None, "--issue", help="The issue id, for the record."),
        config_path: str = ConfigOption,
        as_json: bool = JsonOption,
    ) -> None:
        """Record bounces in the database (idempotent) and apply the suppression policy."""
        from .. import db
        from ..bounces import ingest

        cfg = config(config_path)
        if as_json:
            results = ingest(db.get_engine(cfg), cfg, paths, send_id=send, issue=issue)
        else:
            from rich.progress import Progress, SpinnerColumn, TextColumn

            with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err_console,
                          transient=True) as bar:
                task = bar.add_task("recording bounces", total=None)
                results = ingest(db.get_engine(cfg), cfg, paths, send_id=send, issue=issue,
                                 progress=lambda n: bar.update(task, description=f"recording bounces: {n} messages"))
        alerts = list(dict.fromkeys(o.alert for _r, o in results if o.alert))
        if as_json:
            print_json([{**r, "action": o.action, "suppressed": o.suppressed, "reason": o.reason, "detail": o.detail,
                         "alert": o.alert} for r, o in results])
            return
        summary_table("bounces ingest", sorted(Counter(o.action for _r, o in results).items()), ("outcome", "count"))
        for r, o in results:
            if o.suppressed and o.detail != "already suppressed":
                console.print(f"suppressed {o.address} ({o.reason}) — {Path(r['file']).name}", highlight=False)
        for alert in alerts:
            err_console.print(f"[red]alert:[/] {alert}", highlight=False)


def _attention(a) -> dict:
    return {k: getattr(a, k) for k in ("email", "name", "company", "owner", "reason", "detail", "customer_id")}
