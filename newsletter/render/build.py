"""Render every variant of an issue and write ``build/<issue>/`` (the contract the send step reads).

``build/<issue>/manifest.json`` lists the variants and which tier gets which (docs/architecture.md).
The folder is written beside the old one and swapped in at the end, so a send that reads it never
sees half a build.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..content import Issue
from ..errors import UserError
from .email import RenderedVariant, Timings, final_subject, render_variant
from .eml import preview_eml
from .variants import PRIMARY, VariantPlan, plan_variants, tier_variant

MANIFEST = "manifest.json"


@dataclass
class RenderedIssue:
    """All variants of an issue, in memory (what preflight checks before anything is written)."""

    issue: Issue
    subject: str
    variants: list[RenderedVariant]
    tier_variant: dict[str, str]
    timings: Timings = field(default_factory=Timings)


@dataclass
class BuiltVariant:
    name: str
    tiers: tuple[str, ...]
    html: str
    text: str
    html_path: Path
    text_path: Path
    eml_path: Path
    articles: tuple[str, ...] = ()

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode("utf-8"))


@dataclass
class BuiltIssue:
    """A built issue as the send step sees it: subject, variants with their HTML/text, tier -> variant."""

    issue: str
    subject: str
    preheader: str
    ad: bool
    number: int
    date: dt.date
    folder: Path
    variants: dict[str, BuiltVariant]
    tier_variant: dict[str, str]
    title: str = ""

    def for_tier(self, tier: str | None) -> BuiltVariant:
        """The variant a recipient of this tier gets; an unknown or empty tier gets the primary one."""
        return self.variants[self.tier_variant.get(tier or "", PRIMARY)]


def render_issue(cfg, issue: Issue) -> RenderedIssue:
    plans = plan_variants(issue)
    variants = [render_variant(cfg, issue, plan) for plan in plans]
    timings = Timings()
    for v in variants:
        timings.add(v.timings)
    return RenderedIssue(issue, final_subject(issue), variants, tier_variant(plans), timings)


def build_issue(cfg, issue: Issue) -> BuiltIssue:
    """Render and write an issue (no preflight: ``newsletter build`` runs that first)."""
    return write_built(cfg, render_issue(cfg, issue))


def issue_build_folder(cfg, issue_id: str) -> Path:
    return cfg.path(cfg.paths.build) / issue_id


def _files(plan: VariantPlan) -> dict[str, str]:
    prefix = f"{plan.folder}/" if plan.folder else ""
    return {"html": f"{prefix}email.html", "text": f"{prefix}email.txt", "eml": f"{prefix}email.eml"}


def write_built(cfg, rendered: RenderedIssue) -> BuiltIssue:
    issue = rendered.issue
    final = issue_build_folder(cfg, issue.id)
    staging = final.with_name(f".{issue.id}.new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    manifest = {
        "issue": issue.id, "subject": rendered.subject, "preheader": issue.preheader, "ad": issue.ad,
        "number": issue.number, "date": issue.date.isoformat(), "title": issue.title,
        "variants": {}, "tier_variant": rendered.tier_variant,
        "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    for variant in rendered.variants:
        files = _files(variant.plan)
        (staging / files["html"]).parent.mkdir(parents=True, exist_ok=True)
        (staging / files["html"]).write_text(variant.html, encoding="utf-8")
        (staging / files["text"]).write_text(variant.text, encoding="utf-8")
        (staging / files["eml"]).write_bytes(preview_eml(
            cfg, subject=rendered.subject, html=variant.html, text=variant.text, date=issue.date, issue_id=issue.id))
        manifest["variants"][variant.plan.name] = {
            "tiers": list(variant.plan.tiers), **files,
            "articles": [a.slug for a in variant.plan.articles],
            "html_bytes": len(variant.html.encode("utf-8")),
        }
    (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    old = final.with_name(f".{issue.id}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return load_built(cfg, issue.id)


def load_built(cfg, issue_id: str) -> BuiltIssue:
    """Read ``build/<issue>/manifest.json`` and the files it names (what the send step uses)."""
    folder = issue_build_folder(cfg, issue_id)
    path = folder / MANIFEST
    if not path.is_file():
        raise UserError(f"issue {issue_id} is not built yet: run `newsletter build {issue_id}`", where=str(path))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        variants = {}
        for name, v in data["variants"].items():
            paths = {key: folder / v[key] for key in ("html", "text", "eml")}
            variants[name] = BuiltVariant(
                name=name, tiers=tuple(v["tiers"]),
                html=paths["html"].read_text(encoding="utf-8"), text=paths["text"].read_text(encoding="utf-8"),
                html_path=paths["html"], text_path=paths["text"], eml_path=paths["eml"],
                articles=tuple(v.get("articles", ())),
            )
        return BuiltIssue(
            issue=data["issue"], subject=data["subject"], preheader=data.get("preheader", ""), ad=bool(data["ad"]),
            number=int(data["number"]), date=dt.date.fromisoformat(data["date"]), folder=folder,
            variants=variants, tier_variant=dict(data["tier_variant"]), title=data.get("title", ""),
        )
    except (KeyError, ValueError, TypeError, OSError) as exc:
        raise UserError(f"broken build ({exc.__class__.__name__}: {exc}); run `newsletter build {issue_id}` again",
                        where=str(path)) from None
