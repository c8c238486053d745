"""``newsletter new``, ``build``, ``check``: content -> preflight -> build/<issue>/ (+ the web archive).

The render stage (premailer, cssutils) is imported inside the commands: ``newsletter --help`` and the
other stages' commands should not pay for it.
"""

from __future__ import annotations

import time
from typing import Optional

import typer
from rich.markup import escape

from ..content import display_path, list_issues, load_issue
from .common import ConfigOption, JsonOption, config, console, err_console, print_json, summary_table


def _print_findings(cfg, report) -> None:
    """One line per finding (never wrapped, so grep and editors can jump to file and field)."""
    for f in report.findings:
        style = "red" if f.level == "error" else "yellow"
        err_console.print(f"[{style}]{f.level}[/]: {escape(f.file)}: [bold]{escape(f.field)}[/]: {escape(f.message)}",
                          highlight=False, soft_wrap=True)


def _build_site(cfg) -> dict:
    """The web archive of every issue, by the site stage (skipped with a note while it does not exist)."""
    try:
        from ..site import build_site
    except ModuleNotFoundError as exc:
        if exc.name != "newsletter.site":
            raise
        return {"skipped": "newsletter.site is not there yet"}
    started = time.perf_counter()
    issues = [load_issue(cfg, issue_id) for issue_id in list_issues(cfg)]
    result = build_site(cfg, issues, cfg.path(cfg.paths.build) / "site")
    summary = {name: getattr(result, name) for name in ("issues", "articles", "assets") if hasattr(result, name)}
    summary["out_dir"] = display_path(cfg, getattr(result, "out_dir", cfg.path(cfg.paths.build) / "site"))
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary


def register(app: typer.Typer) -> None:
    @app.command("check")
    def check_cmd(
        issue: Optional[str] = typer.Argument(None, help="Issue id (folder under content/); default: the newest."),
        json_out: bool = JsonOption,
        config_path: str = ConfigOption,
    ) -> None:
        """Preflight an issue: front matter, images, links, size, opt-out, legal footer, ad label."""
        from ..check import preflight

        cfg = config(config_path)
        with console.status("checking…") if not json_out else _nullcontext():
            report = preflight(cfg, issue)
        if json_out:
            print_json(report.to_json())
        else:
            _print_findings(cfg, report)
            console.print(f"{report.issue.id}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)")
        if report.errors:
            raise typer.Exit(1)

    @app.command("build")
    def build_cmd(
        issue: Optional[str] = typer.Argument(None, help="Issue id; default: the newest."),
        site: bool = typer.Option(True, "--site/--no-site", help="Also build the web archive (build/site/)."),
        json_out: bool = JsonOption,
        config_path: str = ConfigOption,
    ) -> None:
        """Build build/<issue>/ (email.html, email.txt, email.eml per variant, manifest.json) and the site."""
        from ..check import preflight, sent_size
        from ..render import write_built

        cfg = config(config_path)
        started = time.perf_counter()
        with console.status("rendering and checking…") if not json_out else _nullcontext():
            report = preflight(cfg, issue)
        if report.errors:
            if json_out:
                print_json({**report.to_json(), "built": False})
            else:
                _print_findings(cfg, report)
                err_console.print(f"[red]build stopped[/]: {len(report.errors)} error(s) in {report.issue.id}", highlight=False)
            raise typer.Exit(1)
        built = write_built(cfg, report.rendered)
        with console.status("building the web archive…") if not json_out else _nullcontext():
            site_summary = _build_site(cfg) if site else {"skipped": "--no-site"}
        total = time.perf_counter() - started
        t = report.rendered.timings
        variants = {
            name: {"tiers": list(v.tiers), "articles": list(v.articles), "html": display_path(cfg, v.html_path),
                   "html_bytes": v.html_bytes, "sent_bytes": sent_size(cfg, v.html),
                   "text_bytes": len(v.text.encode("utf-8"))}
            for name, v in built.variants.items()
        }
        if json_out:
            print_json({
                "issue": built.issue, "built": True, "subject": built.subject, "folder": display_path(cfg, built.folder),
                "variants": variants, "tier_variant": built.tier_variant,
                "findings": report.to_json()["findings"], "site": site_summary,
                "seconds": {"total": round(total, 3), "mjml": round(t.mjml, 3), "inline_css": round(t.inline, 3),
                            "template": round(t.template + t.text, 3), "site": site_summary.get("seconds")},
            })
            return
        _print_findings(cfg, report)
        summary_table(
            f"{built.issue} — {built.subject}",
            [(name, ", ".join(v["tiers"]), len(v["articles"]), f"{v['sent_bytes'] / 1024:.1f} KB", v["html"])
             for name, v in variants.items()],
            ("variant", "tiers", "articles", "HTML as sent", "file"),
        )
        site_line = site_summary.get("skipped") or f"{site_summary.get('seconds', '?')} s"
        summary_table("timing", [
            ("MJML compile", f"{t.mjml * 1000:.0f} ms"), ("CSS inlining", f"{t.inline * 1000:.0f} ms"),
            ("templates", f"{(t.template + t.text) * 1000:.0f} ms"), ("site", site_line), ("total", f"{total:.2f} s"),
        ], ("step", "time"))

    @app.command("new")
    def new_cmd(
        issue: str = typer.Argument(..., help="The new issue id, e.g. 2026-12 (becomes the URL)."),
        config_path: str = ConfigOption,
    ) -> None:
        """Start the next issue from the previous issue's structure."""
        from ..scaffold import new_issue

        cfg = config(config_path)
        made = new_issue(cfg, issue)
        summary_table(f"new issue {made.issue_id}" + (f" (from {made.previous})" if made.previous else ""),
                      [(display_path(cfg, p),) for p in made.files], ("file",))
        console.print(f"date {made.date.isoformat()}" + (f" — {made.note}" if made.note else ""))
        console.print(f"next: write the files, add the images, then `newsletter check {made.issue_id}`")


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
