"""Preflight: rules an issue must pass before it is built and sent -> a list of findings.

Each finding is one line a person can act on: level, file, field, message. ``newsletter check`` prints
them; ``newsletter build`` runs the same rules and stops on any error. The numbers behind the rules
(size limits, subject length) are explained in docs/authoring.md.
"""

from __future__ import annotations

import html as htmllib
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import lxml.html

from .content import Issue, article_slug, content_root, display_path, list_issues, read_issue
from .render import AD_LABEL, RenderedIssue, final_subject, render_issue
from .render.email import HTML_TEMPLATE, TEXT_TEMPLATE, template_folder
from .track.tokens import Signer

ERROR, WARNING = "error", "warning"
GMAIL_CLIP_BYTES = 102 * 1024      # Gmail clips an HTML part larger than ~102 KB ("[Message clipped]")
SIZE_WARN_BYTES = 90 * 1024
SUBJECT_MAX_CHARS = 40             # Naver/Daum/Gmail mobile lists cut a Korean subject around here
PLACEHOLDERS = {"name", "company", "unsubscribe_url", "open_url", "r"}
UNSUBSCRIBE = "%%unsubscribe_url%%"
# An ad label in any spelling: (광고) [광고] 【광고】 （광고） <광고> (광 고) 광 고 ... (the plain word 광고 is not one)
_AD_WORD = re.compile(r"([\(\[（【〔<〈「『{])?\s*광(\s*)고\s*([\)\]）】〕>〉」』}])?")
_PLACEHOLDER = re.compile(r"%%([^%\s]{0,40})%%")
_SCHEME = re.compile(r"^(?:https?|mailto|tel):", re.I)


@dataclass
class Finding:
    level: str      # "error" | "warning"
    file: str       # as the user would type it, relative to the project
    field: str      # front-matter field, "body", "subject", "size", ...
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.file}: {self.field}: {self.message}"


@dataclass
class Preflight:
    issue: Issue
    findings: list[Finding]
    rendered: RenderedIssue | None = None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == WARNING]

    def to_json(self) -> dict:
        return {"issue": self.issue.id, "errors": len(self.errors), "warnings": len(self.warnings),
                "findings": [asdict(f) for f in self.findings]}


def preflight(cfg, issue_id: str | None = None) -> Preflight:
    """Load (leniently), render in memory and run every rule; nothing is written."""
    issue, problems = read_issue(cfg, issue_id)
    report = _Report(cfg)
    for p in problems:
        report.add(ERROR, p.file, p.field, p.message)
    _check_subject(report, issue)
    _check_config(report, cfg)
    sources = [(issue.folder / "issue.md", issue.note_html)] + [(a.source, a.body_html) for a in issue.articles]
    targets = _SiteTargets(cfg)
    for path, body in sources:
        _check_body(report, path, body, targets)
    for a in issue.articles:   # rendered images of articles whose file is missing are already reported
        if a.image and not a.image_width:
            report.flagged.add(a.image)
    _check_placeholders(report, issue)
    rendered = render_issue(cfg, issue)
    _check_rendered(report, cfg, rendered, targets)
    return Preflight(issue, report.findings, rendered)


class _Report:
    """Collects findings once each (the same problem in two variants is one line)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.findings: list[Finding] = []
        self.flagged: set[str] = set()   # URLs / names already reported at their source

    def add(self, level: str, file, field_name: str, message: str) -> None:
        finding = Finding(level, display_path(self.cfg, Path(file)), field_name, message)
        if finding not in self.findings:
            self.findings.append(finding)


# --- subject and config ----------------------------------------------------------------------------

def _check_subject(report: _Report, issue: Issue) -> None:
    path = issue.folder / "issue.md"
    subject = issue.subject
    if not subject:
        return   # reported as a missing field
    labels = ad_labels(subject)
    if issue.ad:
        exact = subject.startswith(AD_LABEL)
        wrong = labels[1:] if exact else labels
        if wrong:
            report.add(ERROR, path, "subject",
                       f"{wrong[0]!r} is not the legal ad label: write exactly {AD_LABEL} at the very start, once, "
                       f"or leave it out (ad: true, so the build adds {AD_LABEL})")
    elif labels:
        report.add(ERROR, path, "subject",
                   f"carries an ad label {labels[0]!r} but ad: false; set ad: true (the build then adds {AD_LABEL}) "
                   "or remove the label")
    if not issue.preheader:
        report.add(WARNING, path, "preheader", "missing: mail apps then show the first text of the e-mail as the preview line")
    sent = final_subject(issue)
    if len(sent) > SUBJECT_MAX_CHARS:
        report.add(WARNING, path, "subject",
                   f"{len(sent)} characters as sent ({sent!r}); Korean mail apps cut it around {SUBJECT_MAX_CHARS}")


def _check_config(report: _Report, cfg) -> None:
    """The legal footer needs these (정보통신망법 제50조: who sends, how to reach them)."""
    for section, name in (("company", "name"), ("company", "address"), ("company", "phone"),
                          ("company", "email"), ("sender", "from_name")):
        if not str(getattr(getattr(cfg, section), name) or "").strip():
            report.add(ERROR, cfg.source, f"{section}.{name}", "missing: the legal footer of every e-mail needs it")


def ad_labels(subject: str) -> list[str]:
    """Every ad label (or look-alike) in a subject, as written."""
    return [m.group(0).strip() for m in _AD_WORD.finditer(subject) if m.group(1) or m.group(2) or m.group(3)]


# --- links and images ------------------------------------------------------------------------------

class _SiteTargets:
    """What exists on the web archive: issues, their article slugs and files (for internal links)."""

    def __init__(self, cfg):
        self.base = cfg.site.base_url.rstrip("/") + "/"
        self.root = content_root(cfg)
        self.issues = set(list_issues(cfg))

    def problem(self, url: str) -> str | None:
        """Why an absolute URL into the site points nowhere, or None."""
        if not url.startswith(self.base):
            return None
        path = urlsplit(url).path[len(urlsplit(self.base).path):]
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] not in self.issues and not re.fullmatch(r"\d{4}-\d{2}.*", parts[0]):
            return None   # the archive index, feed, sitemap ...
        issue_id = parts[0]
        if issue_id not in self.issues:
            return f"no issue {issue_id!r} in {self.root.name}/"
        if len(parts) == 1:
            return None
        folder = self.root / issue_id
        name = parts[1]
        slugs = {s[1] for s in map(article_slug, folder.glob("*.md")) if s}
        if len(parts) == 2 and (name in slugs or (not path.endswith("/") and (folder / name).is_file())):
            return None   # an article (with or without the trailing slash) or a published file
        if len(parts) == 2 and not path.endswith("/") and "." in name:
            return f"no file {name!r} in {self.root.name}/{issue_id}/"
        return f"no article {'/'.join(parts[1:])!r} in issue {issue_id}"


def _links(html: str) -> list[tuple[str, str, lxml.html.HtmlElement]]:
    """(kind, url, element) for every a[href], area[href] and img[src]."""
    if not html.strip():
        return []
    doc = lxml.html.fromstring(html) if html.lstrip().lower().startswith(("<!doctype", "<html")) \
        else lxml.html.fragment_fromstring(html, create_parent="div")
    out = []
    for el in doc.iter("a", "area", "img"):
        attr = "src" if el.tag == "img" else "href"
        if el.get(attr) is not None or el.tag == "img":
            out.append((el.tag, (el.get(attr) or "").strip(), el))
    return out


def _is_absolute(url: str) -> bool:
    return bool(_SCHEME.match(url)) or url.startswith(("#", "%%", "data:"))


def _check_body(report: _Report, path: Path, body_html: str, targets: _SiteTargets) -> None:
    """Links and images written by the editor, reported against the Markdown file they are in."""
    for tag, url, el in _links(body_html):
        what = "image" if tag == "img" else "link"
        if tag == "img" and not (el.get("alt") or "").strip():
            report.add(ERROR, path, "body", f"image {url!r} has no alt text; write ![what it shows]({url})")
        if not url and tag == "img":
            report.add(ERROR, path, "body", "an <img> without src")
        elif not _is_absolute(url):
            where = f"{path.parent.name}/"
            report.add(ERROR, path, "body", f"broken {what} {url!r}: no such file or article in {where} "
                       "(link to NN-slug.md, an image beside the Markdown, or a full https:// URL)")
            report.flagged.add(url)
        elif (reason := targets.problem(url)):
            report.add(ERROR, path, "body", f"broken internal {what} {url!r}: {reason}")
            report.flagged.add(url)


def _check_rendered(report: _Report, cfg, rendered: RenderedIssue, targets: _SiteTargets) -> None:
    templates = template_folder(cfg)
    html_template, text_template = templates / HTML_TEMPLATE, templates / TEXT_TEMPLATE
    build = Path(cfg.paths.build) / rendered.issue.id
    for variant in rendered.variants:
        label = f" (variant {variant.plan.name})" if len(rendered.variants) > 1 else ""
        html, text = variant.html, variant.text
        size = sent_size(cfg, html)
        html_file = cfg.path(build / (f"{variant.plan.folder}/" if variant.plan.folder else "") / "email.html")
        if size > GMAIL_CLIP_BYTES:
            report.add(ERROR, html_file, "size", f"HTML part is {size / 1024:.1f} KB as sent{label}; Gmail clips above "
                       f"{GMAIL_CLIP_BYTES // 1024} KB: shorten summaries or move articles to the web")
        elif size > SIZE_WARN_BYTES:
            report.add(WARNING, html_file, "size", f"HTML part is {size / 1024:.1f} KB as sent{label}; Gmail clips above "
                       f"{GMAIL_CLIP_BYTES // 1024} KB")
        _check_html_elements(report, html, html_template, targets, label)
        _check_opt_out(report, html, text, html_template, text_template, label)
        _check_footer(report, cfg, html, text, html_template, text_template)
        for where, part in ((html_template, html), (text_template, text)):
            for name in sorted(set(_PLACEHOLDER.findall(part)) - PLACEHOLDERS - report.flagged):
                report.add(ERROR, where, "placeholder", _unknown_placeholder(name))


def _check_html_elements(report: _Report, html: str, template: Path, targets: _SiteTargets, label: str) -> None:
    pixel = False
    for tag, url, el in _links(html):
        if url in report.flagged or any(url.endswith("/" + name) for name in report.flagged):
            continue
        if tag == "img":
            if url == "%%open_url%%":
                pixel = True
                continue
            if not (el.get("alt") or "").strip():
                report.add(ERROR, template, "img", f"<img src={url!r}> has no alt text{label}")
            for dim in ("width", "height"):
                if not (el.get(dim) or "").isdigit() or el.get(dim) == "0":
                    report.add(ERROR, template, "img", f"<img src={url!r}> needs a pixel {dim} attribute{label}")
        if not _is_absolute(url):
            report.add(ERROR, template, "link", f"relative {'image' if tag == 'img' else 'link'} {url!r} in the e-mail{label}; "
                       "e-mail clients need absolute https:// URLs")
        elif (reason := targets.problem(url)):
            report.add(ERROR, template, "link", f"broken internal link {url!r}: {reason}{label}")
    if not pixel:
        report.add(WARNING, template, "img", "no open pixel <img src=\"%%open_url%%\" width=\"1\" height=\"1\" alt=\"\">: opens will not be counted")


def _check_opt_out(report: _Report, html: str, text: str, html_template: Path, text_template: Path, label: str) -> None:
    """정보통신망법 제50조: a free, visible opt-out; offered in Korean and English."""
    anchors = [el for tag, url, el in _links(html) if tag == "a" and url == UNSUBSCRIBE]
    words = " ".join(el.text_content() for el in anchors).lower()
    if not anchors:
        report.add(ERROR, html_template, "unsubscribe", f'no unsubscribe link <a href="{UNSUBSCRIBE}"> in the e-mail{label}')
    else:
        for word in ("수신거부", "unsubscribe"):
            if word not in words.replace(" ", ""):
                report.add(ERROR, html_template, "unsubscribe", f"the unsubscribe link text must say {word!r} "
                           f"(offer the opt-out as 수신거부 and Unsubscribe){label}")
    if UNSUBSCRIBE not in text:
        report.add(ERROR, text_template, "unsubscribe", f"the text part has no {UNSUBSCRIBE}{label}")


def _check_footer(report: _Report, cfg, html: str, text: str, html_template: Path, text_template: Path) -> None:
    visible = htmllib.unescape(re.sub(r"<[^>]+>", " ", html))
    for key, value in (("company.name", cfg.company.name), ("company.address", cfg.company.address),
                       ("company.phone", cfg.company.phone), ("company.email", cfg.company.email),
                       ("sender.from_name", cfg.sender.from_name)):
        value = str(value or "").strip()
        if not value:
            continue   # reported against config.yaml
        if value not in visible:
            report.add(ERROR, html_template, "footer", f"legal footer lacks {key} ({value!r})")
        if value not in text:
            report.add(ERROR, text_template, "footer", f"legal footer lacks {key} ({value!r})")


def _unknown_placeholder(name: str) -> str:
    return f"unknown merge field %%{name}%% (known: " + ", ".join(f"%%{p}%%" for p in sorted(PLACEHOLDERS)) + ")"


def _check_placeholders(report: _Report, issue: Issue) -> None:
    """Misspelt merge fields, reported where the editor wrote them; none in the subject (it is not filled)."""
    path = issue.folder / "issue.md"
    if _PLACEHOLDER.search(issue.subject):
        report.add(ERROR, path, "subject", "merge fields (%%...%%) are not filled in the subject; write it for everyone")
    sources = [(path, {"title": issue.title, "preheader": issue.preheader, "body": issue.note_md})]
    sources += [(a.source, {"title": a.title, "summary": a.summary, "image_alt": a.image_alt, "body": a.body_md})
                for a in issue.articles]
    for file, fields in sources:
        for field_name, value in fields.items():
            for name in sorted(set(_PLACEHOLDER.findall(value)) - PLACEHOLDERS):
                report.add(ERROR, file, field_name, _unknown_placeholder(name))
                report.flagged.add(name)


def sent_size(cfg, html: str) -> int:
    """UTF-8 bytes of the HTML part as a recipient gets it: placeholders filled, links rewritten to
    click-tracking URLs (``<tracking>/c/<r>~<link token>``, longer than the link itself)."""
    signer = Signer(b"size-estimate")   # token lengths do not depend on the key
    tracking = cfg.tracking.base_url.rstrip("/")
    delivery = 10**9
    r = signer.recipient("r", delivery)
    sized = re.sub(r'href="(https?://[^"]+)"',
                   lambda m: f'href="{tracking}/c/{r}~{signer.link(htmllib.unescape(m.group(1)))}"', html)
    for name, value in (("name", "홍길동"), ("company", "주식회사 예시상사"), ("r", r),
                        ("unsubscribe_url", f"{tracking}/u/{signer.recipient('u', delivery)}"),
                        ("open_url", f"{tracking}/o/{signer.recipient('o', delivery)}.gif")):
        sized = sized.replace(f"%%{name}%%", value)
    return len(sized.encode("utf-8"))
