"""``newsletter links`` (permalinks for sales staff) and ``newsletter report`` (figures per issue)."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .. import links as links_stage
from .. import report as report_stage
from .common import ConfigOption, JsonOption, config, console, err_console, print_json


def register(app: typer.Typer) -> None:
    app.command("links")(links)
    app.command("report")(report)


def links(
    issue: Optional[str] = typer.Argument(None, help="Issue id, e.g. 2026-11 (default: the newest)."),
    rep: Optional[str] = typer.Option(None, "--rep", help="Sales rep id (the lists' owner column, e.g. rep-kim) to attribute visits to."),
    fmt: str = typer.Option("text", "--format", "-f", help="text (a Korean message to paste), csv or json."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write to this file (CSV gets a BOM for Excel)."),
    config_path: str = ConfigOption,
) -> None:
    """Permalinks of an issue and its articles with a rep's attribution, ready to paste to a customer."""
    cfg = config(config_path)
    shared = links_stage.share_links(cfg, issue, rep)
    text = links_stage.render(shared, fmt)
    if out is None:
        typer.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8-sig" if fmt == "csv" else "utf-8", newline="")
    err_console.print(f"{len(shared.links)} links for {shared.issue}" + (f" (rep {rep})" if rep else "") + f" → {out}")


def report(
    issue: Optional[str] = typer.Argument(None, help="Issue id (default: the latest sent)."),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write a self-contained HTML report with charts."),
    last: Optional[int] = typer.Option(None, "--last", min=1, help="Issues looked at for inactive key accounts (default report.inactive_issues)."),
    as_json: bool = JsonOption,
    config_path: str = ConfigOption,
) -> None:
    """Delivered, opened, clicked, unsubscribed per issue, tier and variant; top articles; rep visits;
    key accounts that went quiet (grouped by owner); engagement per company."""
    cfg = config(config_path)
    with console.status("counting…") if not as_json else nullcontext():
        r = report_stage.build_report(cfg, issue, last=last)
    if html is not None:
        path = report_stage.write_html(r, cfg, html)
        err_console.print(f"HTML report → {path}")
    if as_json:
        print_json(r.as_dict())
        return
    _print(r)


def _pct(n: int, of: int) -> str:
    return f"{n:,} ({n / of * 100:.1f}%)" if of else f"{n:,}"


def _print(r: report_stage.IssueReport) -> None:
    console.print(f"[bold]{r.title}[/bold]  ({r.issue}, sent {(r.sent_at or '')[:16].replace('T', ' ')} UTC)")
    t = Table(title="Delivery and engagement (opened, clicks = people; machine opens and clicks never count)",
              title_justify="left")
    for col in ("", "sent", "failed", "bounced", "delivered", "opened", "machine opens", "clicks", "clickers",
                "machine clicks", "unsub", "complaints"):
        t.add_column(col, justify="left" if not col else "right")
    rows = [("all", r.overall)] + [(f"tier {k}", v) for k, v in r.tiers.items()] + [(f"variant {k}", v) for k, v in r.variants.items()]
    for i, (name, f) in enumerate(rows):
        t.add_row(
            name, f"{f.sent:,}", f"{f.failed:,}", f"{f.bounced:,}", f"{f.delivered:,}", _pct(f.opened, f.delivered),
            f"{f.machine_opens:,}", f"{f.clicks:,}", _pct(f.clickers, f.delivered), f"{f.machine_clicks:,}",
            f"{f.unsubscribed:,}",
            f"{f.complaints:,}", end_section=i == 0 or i == len(r.tiers),
        )
    console.print(t)

    t = Table(title="Articles by clicks", title_justify="left")
    for col in ("article", "clicks", "clickers", "rep visits"):
        t.add_column(col, justify="left" if col == "article" else "right")
    for a in r.top_articles:
        t.add_row(a.title, f"{a.clicks:,}", f"{a.clickers:,}", f"{a.visits:,}")
    console.print(t)

    if r.rep_visits:
        t = Table(title="Visits from links shared by sales reps (?ref=)", title_justify="left")
        t.add_column("rep")
        t.add_column("visits", justify="right")
        t.add_column("pages")
        for v in r.rep_visits:
            t.add_row(v.rep, f"{v.visits:,}", ", ".join(f"{s or '(issue)'} {n}" for s, n in sorted(v.articles.items(), key=lambda kv: -kv[1])))
        console.print(t)

    n = sum(len(v) for v in r.inactive_key_accounts.values())
    t = Table(
        title=f"Key accounts with no human open in the last {len(r.inactive_window)} issues "
        f"({', '.join(r.inactive_window)}): {n}",
        title_justify="left",
    )
    for col in ("owner", "company", "name", "address", "received", "last opened"):
        t.add_column(col, justify="right" if col == "received" else "left")
    for owner, accounts in r.inactive_key_accounts.items():
        for i, a in enumerate(accounts):
            t.add_row(
                (owner or "(no owner)") if i == 0 else "", a.company, a.name, a.address,
                f"{a.received}/{len(r.inactive_window)}", a.last_opened_issue or "never",
                end_section=i == len(accounts) - 1,
            )
    console.print(t)

    t = Table(title=f"Companies by engagement (top 20 of {len(r.companies)})", title_justify="left")
    for col in ("company", "addresses", "delivered", "opened", "clicks", "archive visits"):
        t.add_column(col, justify="left" if col == "company" else "right")
    for c in r.companies[:20]:
        t.add_row(c.company + (" ★" if c.key else ""), str(c.addresses), str(c.delivered), str(c.opened), str(c.clicks), str(c.visits))
    console.print(t)
