"""One variant of an issue -> the HTML part (Jinja -> MJML -> mjml-python -> premailer) and the text part.

The HTML keeps per-recipient fields as ``%%field%%`` placeholders so the send step can fill them with
``str.replace`` for each recipient without compiling MJML again.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jinja2
import mjml
from markdown_it import MarkdownIt
from premailer import Premailer

from ..content import Article, Issue, article_url, asset_url, issue_url, link_resolver
from ..errors import UserError
from .variants import VariantPlan

HTML_TEMPLATE = "email.mjml.j2"
TEXT_TEMPLATE = "email.txt.j2"
EMAIL_IMAGE_WIDTH = 552          # 600 px container minus 2 x 24 px padding
AD_LABEL = "(광고)"
WEEKDAYS_KO = "월화수목금토일"


@dataclass
class Timings:
    """Seconds spent in each step, summed over variants (for the build summary and the bench)."""

    template: float = 0.0
    mjml: float = 0.0
    inline: float = 0.0
    text: float = 0.0

    def add(self, other: "Timings") -> None:
        for name in ("template", "mjml", "inline", "text"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class RenderedVariant:
    plan: VariantPlan
    html: str
    text: str
    mjml_source: str
    timings: Timings = field(default_factory=Timings)


def final_subject(issue: Issue) -> str:
    """The subject as sent: ``(광고) `` in front when the issue is an ad and the editor did not write it."""
    subject = issue.subject.strip()
    if issue.ad and not subject.startswith(AD_LABEL):
        return f"{AD_LABEL} {subject}"
    return subject


@lru_cache(maxsize=8)
def _environment(folder: Path, autoescape: bool) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def template_folder(cfg) -> Path:
    folder = cfg.path(cfg.paths.templates)
    if not (folder / HTML_TEMPLATE).is_file():
        raise UserError(f"{HTML_TEMPLATE} not found (paths.templates in {cfg.source})", where=str(folder))
    return folder


def _render_template(cfg, name: str, context: dict, *, autoescape: bool) -> str:
    env = _environment(template_folder(cfg), autoescape)
    try:
        return env.get_template(name).render(**context)
    except jinja2.TemplateSyntaxError as exc:
        raise UserError(f"template error: {exc.message}", where=f"{exc.filename or name}:{exc.lineno}") from None
    except jinja2.UndefinedError as exc:
        raise UserError(f"template error: {exc.message}", where=str(template_folder(cfg) / name)) from None


def date_ko(issue: Issue) -> str:
    d = issue.date
    return f"{d.year}년 {d.month}월 {d.day}일 ({WEEKDAYS_KO[d.weekday()]})"


def _article_context(cfg, issue: Issue, article: Article) -> dict:
    base = cfg.site.base_url
    width, height = article.image_width, article.image_height
    if width > EMAIL_IMAGE_WIDTH:
        width, height = EMAIL_IMAGE_WIDTH, round(height * EMAIL_IMAGE_WIDTH / width)
    return {
        "title": article.title,
        "summary": article.summary,
        "author": article.author,
        "url": article_url(base, issue.id, article.slug),
        "image_url": asset_url(base, issue.id, article.image) if article.image else "",
        "image_alt": article.image_alt,
        "image_w": width,
        "image_h": height,
        "slug": article.slug,
    }


def context(cfg, issue: Issue, plan: VariantPlan) -> dict:
    """What the e-mail templates see."""
    return {
        "site": cfg.site,
        "company": cfg.company,
        "sender": cfg.sender,
        "issue_id": issue.id,
        "title": issue.title,
        "subject": final_subject(issue),
        "preheader": issue.preheader,
        "number": issue.number,
        "date_ko": date_ko(issue),
        "ad": issue.ad,
        "issue_url": issue_url(cfg.site.base_url, issue.id),
        "note_html": issue.note_html,
        "note_text": markdown_to_text(issue.note_md, link_resolver(cfg, issue.folder)),
        "articles": [_article_context(cfg, issue, a) for a in plan.articles],
        "variant": plan.name,
        "tiers": plan.tiers,
    }


def inline_css(html: str) -> str:
    """premailer: styles into style="" (kept as <style> too, for media queries).

    ``allow_network=False``: MRML may add a Google Fonts <link> that premailer would fetch.
    ``disable_basic_attributes``: else ``img { height: auto }`` overwrites height="276" with "auto".
    """
    out = Premailer(
        html,
        allow_network=False,
        strip_important=False,
        keep_style_tags=True,
        remove_classes=False,
        disable_basic_attributes=["width", "height"],
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
    ).transform()
    if not out.lstrip().lower().startswith("<!doctype"):
        out = "<!doctype html>\n" + out   # premailer drops it; without it clients render in quirks mode
    return out


def render_variant(cfg, issue: Issue, plan: VariantPlan) -> RenderedVariant:
    timings = Timings()
    ctx = context(cfg, issue, plan)
    t0 = time.perf_counter()
    source = _render_template(cfg, HTML_TEMPLATE, ctx, autoescape=True)
    t1 = time.perf_counter()
    try:
        compiled = mjml.mjml2html(source)
    except Exception as exc:  # MRML raises a plain exception with its parser message
        raise UserError(f"MJML did not compile: {exc}", where=str(template_folder(cfg) / HTML_TEMPLATE)) from None
    t2 = time.perf_counter()
    html = inline_css(compiled)
    t3 = time.perf_counter()
    text = _render_template(cfg, TEXT_TEMPLATE, ctx, autoescape=False)
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    t4 = time.perf_counter()
    timings.template, timings.mjml, timings.inline, timings.text = t1 - t0, t2 - t1, t3 - t2, t4 - t3
    return RenderedVariant(plan, html, text, source, timings)


# --- Markdown -> plain text ------------------------------------------------------------------------

_MD = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


class _TextWriter:
    """Walks markdown-it tokens and writes plain text: paragraphs, "- " lists, "> " quotes, "a | b" rows."""

    def __init__(self, resolve):
        self.resolve = resolve
        self.lines: list[str] = []
        self.line: list[str] = []
        self.prefix: list[str] = []
        self.counters: list[int] = []   # 0 for a bullet list, next number for an ordered list
        self.cells: list[str] = []

    def flush(self) -> None:
        text = "".join(self.line).strip()
        self.line.clear()
        if text:
            outer = (p if p == "> " else " " * len(p) for p in self.prefix[:-1])   # nested items indent
            lead = "".join(outer) + (self.prefix[-1] if self.prefix else "")
            self.lines.extend(lead + part for part in text.split("\n"))
            if not self.counters:
                self.lines.append("")

    def token(self, token) -> None:
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            self.counters.append(0 if kind == "bullet_list_open" else 1)
        elif kind in ("bullet_list_close", "ordered_list_close"):
            self.counters.pop()
            if not self.counters:
                self.lines.append("")
        elif kind == "list_item_open":
            number = self.counters[-1]
            self.prefix.append(f"{number}. " if number else "- ")
            if number:
                self.counters[-1] += 1
        elif kind in ("list_item_close", "blockquote_close"):
            self.flush()
            self.prefix.pop()
        elif kind == "blockquote_open":
            self.prefix.append("> ")
        elif kind in ("paragraph_close", "heading_close"):
            self.flush()
        elif kind in ("th_close", "td_close"):
            self.cells.append("".join(self.line).strip())
            self.line.clear()
        elif kind == "tr_close":
            self.lines.append(" | ".join(self.cells))
            self.cells.clear()
        elif kind == "table_close":
            self.lines.append("")
        elif kind in ("fence", "code_block"):
            self.lines.extend([token.content.rstrip("\n"), ""])
        elif kind == "inline":
            self.inline(token.children or ())

    def inline(self, children) -> None:
        links: list[tuple[str, int]] = []   # (href, where the label starts)
        for child in children:
            kind = child.type
            if kind in ("text", "code_inline"):
                self.line.append(child.content)
            elif kind in ("softbreak", "hardbreak"):
                self.line.append("\n")
            elif kind == "link_open":
                href = str(child.attrGet("href") or "")
                links.append((self.resolve(href) or href, len(self.line)))
            elif kind == "link_close" and links:
                href, begin = links.pop()
                label = "".join(self.line[begin:]).strip()
                if href and href != label and not href.startswith("mailto:"):
                    self.line.append(f" ({href})")
            elif kind == "image":
                self.line.append(f"[{child.content or '이미지'}]")


def markdown_to_text(md: str, resolve=lambda url: url) -> str:
    """The editor's Markdown as readable plain text, links written as "label (absolute url)"."""
    writer = _TextWriter(resolve)
    for token in _MD.parse(md):
        writer.token(token)
    writer.flush()
    return "\n".join(writer.lines).strip()
