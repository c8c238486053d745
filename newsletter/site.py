"""Issues -> the web archive in ``build/site/``: index, issue and article pages, Atom/RSS feeds, sitemap.

The web version is what sales staff share in a chat or by text message, so every page carries Open
Graph and Twitter card tags (absolute image URL, canonical permalink) for a preview card. Permalinks
follow ``newsletter.content``: ``/<issue>/`` and ``/<issue>/<slug>/``; images sit at ``/<issue>/<file>``,
where the email's ``<img>`` tags point too.

Links between pages are relative, so the same files work at the real base URL, under ``/site/`` in
``newsletter preview`` and from disk; canonical URLs, card tags, feeds and the sitemap are absolute.

Articles restricted with ``audience:`` (e.g. a price preview for key customers) are published
**unlisted**: their page exists at the usual permalink, because the key customers' email links to it,
but it carries ``noindex`` and a "for key customers" note, and appears nowhere else: not in the
archive index, the issue page, the other articles' lists, the feeds or the sitemap. Anyone holding the
link can read it (as anyone can read a forwarded email): put nothing in a webzine that must stay secret.

The site is written into a fresh folder beside ``out_dir`` and swapped in at the end, so a failed build
leaves the previous site untouched and ``newsletter preview`` never serves half a site.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
from feedgen.feed import FeedGenerator
from markupsafe import Markup, escape

from .content import Article, Issue, article_url, asset_url, issue_url
from .errors import UserError

SITE_TEMPLATES = "site"          # folder under templates/
STATIC_FILES = ("style.css",)    # copied as-is from templates/site/ to the site root
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
PUBLISH_TIME = dt.time(10, 0)    # an issue's pages and feed entries are dated at 10:00 local time
_DEFAULT_OG_LOCALE = {"ko": "ko_KR", "en": "en_US", "ja": "ja_JP"}


@dataclass
class SiteResult:
    """What ``build_site`` wrote: counts for the summary table, paths and URLs for tests and the bench."""

    out_dir: Path
    issues: int = 0
    articles: int = 0                                     # listed article pages
    unlisted: list[str] = field(default_factory=list)     # URLs of restricted articles' pages (not in index/feeds/sitemap)
    assets: int = 0                                       # images and other files copied from content/
    urls: list[str] = field(default_factory=list)         # every listed page URL (as in the sitemap)
    seconds: float = 0.0

    @property
    def index(self) -> Path:
        return self.out_dir / "index.html"

    @property
    def atom(self) -> Path:
        return self.out_dir / "feed.xml"

    @property
    def rss(self) -> Path:
        return self.out_dir / "rss.xml"

    @property
    def sitemap(self) -> Path:
        return self.out_dir / "sitemap.xml"


def is_public(article: Article) -> bool:
    """Whether an article is listed on the public web (index, issue page, feeds, sitemap): no audience restriction."""
    return not article.audience


def public_articles(issue: Issue) -> list[Article]:
    return [a for a in issue.articles if is_public(a)]


# --- pages -------------------------------------------------------------------------------------------


@dataclass
class _Page:
    """One HTML page to render: where it goes, how deep it sits (for relative links), its card tags."""

    path: Path                  # relative to the site root
    template: str
    url: str                    # canonical, absolute
    title: str
    description: str
    og_type: str
    card: Article | None        # whose image the preview card shows
    card_issue: Issue | None
    context: dict
    listed: bool = True         # False: a restricted article's page (noindex, not in the sitemap)

    @property
    def root(self) -> str:
        """Relative prefix from this page back to the site root: "", "../", "../../"."""
        return "../" * (len(self.path.parts) - 1)


def _korean_date(d: dt.date) -> str:
    return f"{d.year}년 {d.month}월 {d.day}일"


def _published(cfg, d: dt.date) -> dt.datetime:
    return dt.datetime.combine(d, PUBLISH_TIME, tzinfo=ZoneInfo(cfg.timezone))


def _environment(cfg) -> jinja2.Environment:
    folder = cfg.path(cfg.paths.templates) / SITE_TEMPLATES
    if not folder.is_dir():
        raise UserError(f"site templates folder not found: {folder}")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=jinja2.select_autoescape(["html", "xml"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["korean_date"] = _korean_date
    return env


def _page_body(html: str, base_url: str, root: str) -> str:
    """Body HTML as a page shows it. The loader makes site URLs absolute (for the e-mail); on a page they
    become relative, so links and images also work in the preview and from disk. Tables get a
    scrolling wrapper: a wide price table scrolls by itself instead of the whole page on a phone."""
    base = re.escape(base_url.rstrip("/"))
    html = re.sub(rf'(\s(?:href|src)=")({base})/', lambda m: f"{m.group(1)}{root}", html)
    return html.replace("<table>", '<div class="table-wrap"><table>').replace("</table>", "</table></div>")


def _pages(cfg, issues: list[Issue]) -> list[_Page]:
    base = cfg.site.base_url
    pages: list[_Page] = []
    cover = next(((i, a) for i in issues for a in public_articles(i) if a.image), (None, None))
    pages.append(_Page(
        path=Path("index.html"), template="index.html", url=base.rstrip("/") + "/",
        title=cfg.site.title, description=cfg.site.description or cfg.site.title, og_type="website",
        card=cover[1], card_issue=cover[0],
        context={"issues": [{"issue": i, "articles": public_articles(i)} for i in issues]},
    ))
    for pos, issue in enumerate(issues):
        articles = public_articles(issue)
        newer = issues[pos - 1] if pos > 0 else None
        older = issues[pos + 1] if pos + 1 < len(issues) else None
        first = next((a for a in articles if a.image), None)
        pages.append(_Page(
            path=Path(issue.id) / "index.html", template="issue.html", url=issue_url(base, issue.id),
            title=issue.title, description=issue.preheader or _summary_line(articles) or issue.title,
            og_type="article", card=first, card_issue=issue,
            context={"issue": issue, "articles": articles, "newer": newer, "older": older},
        ))
        for article in issue.articles:
            pages.append(_Page(
                path=Path(issue.id) / article.slug / "index.html", template="article.html",
                url=article_url(base, issue.id, article.slug),
                title=article.title, description=article.summary, og_type="article",
                card=article if article.image else None, card_issue=issue,
                context={"issue": issue, "article": article,
                         "others": [a for a in articles if a is not article]},
                listed=is_public(article),
            ))
    return pages


def _summary_line(articles: list[Article]) -> str:
    return " · ".join(a.title for a in articles[:3])


def _render_page(env: jinja2.Environment, cfg, page: _Page) -> str:
    base = cfg.site.base_url
    card_image = None
    if page.card is not None and page.card_issue is not None:
        card_image = {
            "url": asset_url(base, page.card_issue.id, page.card.image),
            "alt": page.card.image_alt,
            "width": page.card.image_width,
            "height": page.card.image_height,
        }
    issue = page.context.get("issue")
    context = {
        **page.context,
        "cfg": cfg,
        "site": cfg.site,
        "company": cfg.company,
        "page": page,
        "root": page.root,
        "card_image": card_image,
        "og_locale": _DEFAULT_OG_LOCALE.get(cfg.site.language, cfg.site.language),
        "published": _published(cfg, issue.date).isoformat() if issue else None,
        "body": lambda html: Markup(_page_body(html, base, page.root)),
    }
    try:
        return env.get_template(page.template).render(**context)
    except jinja2.TemplateError as exc:
        where = getattr(exc, "filename", None) or page.template
        line = getattr(exc, "lineno", None)
        raise UserError(f"template error: {exc.message}", where=f"{where}:{line}" if line else where) from None


# --- feeds and sitemap ---------------------------------------------------------------------------------


def _feed(cfg, issues: list[Issue], *, enclosures: bool) -> FeedGenerator:
    """One entry per public article, newest issue first; dates come from the issues, so rebuilding the
    same content gives the same feed. The article image leads the entry's HTML content; RSS also gets it
    as an enclosure. (Not Atom: feedgen 1.0 drops the rel of an entry's links, so an enclosure would
    come out as a second rel="alternate" link.)"""
    base = cfg.site.base_url.rstrip("/")
    fg = FeedGenerator()
    fg.id(base + "/")
    fg.title(cfg.site.title)
    fg.subtitle(cfg.site.description or cfg.site.title)
    fg.author({"name": cfg.company.name, "email": cfg.company.email} if cfg.company.email else {"name": cfg.company.name})
    fg.link(href=base + "/", rel="alternate")
    fg.link(href=base + "/feed.xml", rel="self")
    fg.language(cfg.site.language)
    fg.generator("dangol")
    newest = _published(cfg, issues[0].date) if issues else dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    fg.updated(newest)
    fg.lastBuildDate(newest)
    for issue in issues:
        when = _published(cfg, issue.date)
        for article in public_articles(issue):
            url = article_url(cfg.site.base_url, issue.id, article.slug)
            fe = fg.add_entry(order="append")
            fe.id(url)
            fe.guid(url, permalink=True)
            fe.title(article.title)
            fe.link(href=url)
            fe.summary(article.summary)
            fe.content(_feed_html(cfg, issue, article), type="html")
            fe.author({"name": article.author})
            fe.published(when)
            fe.updated(when)
            fe.category(term=issue.id, label=issue.title)
            if article.image and enclosures:
                size = (article.source.parent / article.image)
                fe.enclosure(asset_url(cfg.site.base_url, issue.id, article.image),
                             str(size.stat().st_size) if size.is_file() else "0", _mime(article.image))
    return fg


def _feed_html(cfg, issue: Issue, article: Article) -> str:
    if not article.image:
        return article.body_html
    src = escape(asset_url(cfg.site.base_url, issue.id, article.image))
    size = f' width="{article.image_width}" height="{article.image_height}"' if article.image_width else ""
    return f'<p><img src="{src}" alt="{escape(article.image_alt)}"{size}></p>\n' + article.body_html


def _mime(filename: str) -> str:
    ext = Path(filename).suffix.lower()
    return {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
            ".webp": "image/webp", ".svg": "image/svg+xml"}.get(ext, "application/octet-stream")


def _sitemap(pages: list[_Page], issues: list[Issue]) -> bytes:
    urlset = ET.Element("urlset", xmlns=SITEMAP_NS)
    newest = issues[0].date if issues else None
    for page in (p for p in pages if p.listed):
        issue = page.context.get("issue")
        lastmod = issue.date if issue else newest
        url = ET.SubElement(urlset, "url")
        ET.SubElement(url, "loc").text = page.url
        if lastmod:
            ET.SubElement(url, "lastmod").text = lastmod.isoformat()
    ET.indent(urlset)
    return ET.tostring(urlset, encoding="utf-8", xml_declaration=True) + b"\n"


def _robots(cfg) -> str:
    return f"User-agent: *\nAllow: /\nSitemap: {cfg.site.base_url.rstrip('/')}/sitemap.xml\n"


# --- assets ----------------------------------------------------------------------------------------------


def _copy_assets(issue: Issue, dest: Path) -> int:
    """Every non-Markdown file beside the issue's Markdown (article and body images, attachments)."""
    count = 0
    for src in sorted(issue.folder.iterdir()):
        if src.is_file() and src.suffix.lower() != ".md" and not src.name.startswith("."):
            shutil.copy2(src, dest / src.name)
            count += 1
    return count


# --- the build ---------------------------------------------------------------------------------------------


def build_site(cfg, issues: list[Issue], out_dir: Path) -> SiteResult:
    """Write the whole web archive for ``issues`` into ``out_dir`` (replacing what was there)."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    issues = sorted(issues, key=lambda i: (i.date, i.id), reverse=True)
    _check_unique(issues)
    env = _environment(cfg)
    pages = _pages(cfg, issues)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.with_name(f".{out_dir.name}.building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    result = SiteResult(out_dir=out_dir, issues=len(issues))
    try:
        for page in pages:
            target = staging / page.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_render_page(env, cfg, page), encoding="utf-8")
            (result.urls if page.listed else result.unlisted).append(page.url)
        for issue in issues:
            (staging / issue.id).mkdir(exist_ok=True)
            result.assets += _copy_assets(issue, staging / issue.id)
            result.articles += len(public_articles(issue))
        template_dir = cfg.path(cfg.paths.templates) / SITE_TEMPLATES
        for name in STATIC_FILES:
            if (template_dir / name).is_file():
                shutil.copy2(template_dir / name, staging / name)
        _feed(cfg, issues, enclosures=False).atom_file(str(staging / "feed.xml"), pretty=True)
        _feed(cfg, issues, enclosures=True).rss_file(str(staging / "rss.xml"), pretty=True)
        (staging / "sitemap.xml").write_bytes(_sitemap(pages, issues))
        (staging / "robots.txt").write_text(_robots(cfg), encoding="utf-8")
        _swap(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result.seconds = time.perf_counter() - started
    return result


def _check_unique(issues: list[Issue]) -> None:
    seen: set[str] = set()
    for issue in issues:
        if issue.id in seen:
            raise UserError(f"issue {issue.id!r} given twice")
        seen.add(issue.id)


def _swap(staging: Path, out_dir: Path) -> None:
    """Replace out_dir by staging with two renames (the old site is gone for a moment, never half-written)."""
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    if out_dir.exists():
        out_dir.rename(old)
    staging.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)
