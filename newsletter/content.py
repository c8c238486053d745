"""content/<issue>/ -> Issue and Article dataclasses (front matter + Markdown rendered to HTML).

An issue is a folder ``content/<issue-id>/`` (e.g. ``content/2026-11/``) holding ``issue.md`` (the
editor's note and the issue's front matter) and one Markdown file per article, ordered by file name
(``01-new-roastery.md`` ...). Images live beside the Markdown.

Permalinks are stable: ``<site>/<issue-id>/`` for an issue, ``<site>/<issue-id>/<slug>/`` for an
article, where the slug is the file name without its number prefix (``new-roastery``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote

import frontmatter
import yaml
from markdown_it import MarkdownIt
from PIL import Image, UnidentifiedImageError

from .errors import UserError

TIERS = ("key", "loyal", "regular", "prospect")  # highest first


@dataclass
class Article:
    slug: str                     # "new-roastery" (file name without the "01-" prefix)
    order: int                    # 1, 2, ... from the file name
    title: str
    summary: str
    image: str                    # file name relative to the issue folder
    image_alt: str
    author: str
    body_md: str
    body_html: str
    source: Path                  # the Markdown file
    audience: tuple[str, ...] | None = None  # tiers that see it; None = everyone
    image_width: int = 0          # pixel size of the image file
    image_height: int = 0


@dataclass
class Issue:
    id: str                       # "2026-11" (the folder name)
    title: str
    subject: str                  # as written; the (광고) label is added at build time when ad is true
    preheader: str
    date: dt.date
    number: int
    ad: bool
    note_md: str                  # the editor's note (body of issue.md)
    note_html: str
    folder: Path
    articles: list[Article] = field(default_factory=list)


def issue_url(base_url: str, issue_id: str) -> str:
    return f"{base_url.rstrip('/')}/{issue_id}/"


def article_url(base_url: str, issue_id: str, slug: str) -> str:
    return f"{base_url.rstrip('/')}/{issue_id}/{slug}/"


def asset_url(base_url: str, issue_id: str, filename: str) -> str:
    return f"{base_url.rstrip('/')}/{issue_id}/{filename}"


# --- loading ---------------------------------------------------------------------------------------
#
# Loading is lenient underneath (``read_issue`` collects every problem it finds, so ``newsletter
# check`` can list them all at once) and strict on top (``load_issue`` raises the first one).

ISSUE_FILE = "issue.md"
ISSUE_FIELDS = ("title", "subject", "preheader", "date", "number", "ad", "send_at")  # send_at: read by send/schedule.py
ARTICLE_FIELDS = ("title", "summary", "image", "image_alt", "author")
OPTIONAL_FIELDS = {"preheader"}          # a missing preheader is a preflight warning, not an error
BODY_IMAGE_MAX_WIDTH = 552               # 600 px container minus padding: width/height attributes of body images
_ARTICLE_NAME = re.compile(r"^(\d+)-([a-z0-9]+(?:-[a-z0-9]+)*)$")
_ABSOLUTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|#|%%)", re.I)   # scheme:, #fragment or a %%placeholder%%


@dataclass
class ContentProblem:
    """Something wrong in the editor's files: which file, which front-matter field (or "body"), what."""

    file: Path
    field: str
    message: str


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


_MD = _markdown()


def content_root(cfg) -> Path:
    return cfg.path(cfg.paths.content)


def list_issues(cfg) -> list[str]:
    """Issue ids (folders of content/ holding an issue.md), oldest first; ids sort by name (YYYY-MM)."""
    root = content_root(cfg)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / ISSUE_FILE).is_file())


def _issue_folder(cfg, issue_id: str | None) -> Path:
    ids = list_issues(cfg)
    root = content_root(cfg)
    if issue_id is None:
        if not ids:
            raise UserError(f"no issue found (a folder with {ISSUE_FILE})", where=str(root))
        issue_id = ids[-1]
    folder = root / issue_id
    if not (folder / ISSUE_FILE).is_file():
        known = ", ".join(ids[-5:]) or "none"
        raise UserError(f"issue {issue_id!r} not found: no {folder / ISSUE_FILE} (issues: {known})")
    return folder


def load_issue(cfg, issue_id: str | None = None) -> Issue:
    """The issue (default: the newest), or a UserError naming the first bad file and field."""
    issue, problems = read_issue(cfg, issue_id)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more; run `newsletter check {issue.id}`)" if len(problems) > 1 else ""
        raise UserError(f"{first.field}: {first.message}{more}", where=display_path(cfg, first.file))
    return issue


def display_path(cfg, path: Path) -> str:
    """A path as the user would type it: relative to the project folder when inside it."""
    try:
        return str(Path(path).resolve().relative_to(cfg.root.resolve()))
    except ValueError:
        return str(path)


def read_issue(cfg, issue_id: str | None = None) -> tuple[Issue, list[ContentProblem]]:
    """The issue and every problem found on the way; missing fields get empty defaults so rendering can go on."""
    folder = _issue_folder(cfg, issue_id)
    problems: list[ContentProblem] = []
    links = _LinkResolver(cfg, folder)
    meta, body = _read_markdown(folder / ISSUE_FILE, problems)
    fields = _FieldReader(folder / ISSUE_FILE, meta, problems)
    note_html = _render_body(body, links)
    issue = Issue(
        id=folder.name,
        title=fields.text("title"),
        subject=fields.text("subject"),
        preheader=fields.text("preheader"),
        date=fields.date("date"),
        number=fields.integer("number"),
        ad=fields.boolean("ad"),
        note_md=body,
        note_html=note_html,
        folder=folder,
    )
    fields.reject_unknown(ISSUE_FIELDS)
    seen: dict[str, Path] = {}
    for path in sorted(folder.glob("*.md")):
        if path.name == ISSUE_FILE:
            continue
        article = _read_article(path, links, problems)
        if article is None:
            continue
        if article.slug in seen:
            problems.append(ContentProblem(path, "file name", f"slug {article.slug!r} already used by {seen[article.slug].name}"))
            continue
        seen[article.slug] = path
        issue.articles.append(article)
    issue.articles.sort(key=lambda a: (a.order, a.slug))
    if not issue.articles:
        problems.append(ContentProblem(folder, "articles", "no article files (NN-slug.md) beside issue.md"))
    return issue, problems


def article_slug(path: Path) -> tuple[int, str] | None:
    """(order, slug) from ``01-new-roastery.md``; None when the name does not follow NN-slug.md."""
    m = _ARTICLE_NAME.match(path.stem)
    return (int(m.group(1)), m.group(2)) if m else None


def _read_article(path: Path, links: "_LinkResolver", problems: list[ContentProblem]) -> Article | None:
    parsed = article_slug(path)
    if parsed is None:
        problems.append(ContentProblem(path, "file name",
                                       "expected NN-slug.md (digits, a dash, then lowercase a-z, 0-9 and dashes), "
                                       "e.g. 01-new-roastery.md; the slug becomes the permalink"))
        return None
    order, slug = parsed
    meta, body = _read_markdown(path, problems)
    fields = _FieldReader(path, meta, problems)
    article = Article(
        slug=slug, order=order,
        title=fields.text("title"),
        summary=fields.text("summary"),
        image=fields.text("image"),
        image_alt=fields.text("image_alt"),
        author=fields.text("author"),
        body_md=body,
        body_html=_render_body(body, links),
        source=path,
        audience=fields.audience("audience"),
    )
    fields.reject_unknown(ARTICLE_FIELDS + ("audience",))
    if article.image:
        size = _image_size(path.parent / article.image, path, "image", problems)
        if size:
            article.image_width, article.image_height = size
    return article


def _read_markdown(path: Path, problems: list[ContentProblem]) -> tuple[dict, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        problems.append(ContentProblem(path, "file", "not UTF-8 text; save it as UTF-8"))
        return {}, ""
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as exc:
        # where the broken construct starts (an unclosed [ ...), else where the parser gave up
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""   # the YAML text starts on the --- line
        problems.append(ContentProblem(path, "front matter", f"not valid YAML{where} ({getattr(exc, 'problem', exc)})"))
        return {}, text
    if not isinstance(post.metadata, dict):
        problems.append(ContentProblem(path, "front matter", "expected key: value lines between --- lines"))
        return {}, post.content
    if not post.metadata and not text.lstrip().startswith("---"):
        problems.append(ContentProblem(path, "front matter", "missing: start the file with a --- block of key: value lines"))
    return post.metadata, post.content


class _FieldReader:
    """Typed access to front-matter fields; a missing or malformed field becomes a problem and a default."""

    def __init__(self, path: Path, meta: dict, problems: list[ContentProblem]):
        self.path, self.meta, self.problems = path, meta, problems

    def _problem(self, name: str, message: str) -> None:
        self.problems.append(ContentProblem(self.path, name, message))

    def _get(self, name: str):
        value = self.meta.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if name not in OPTIONAL_FIELDS:
                self._problem(name, "missing (required front-matter field)")
            return None
        return value

    def text(self, name: str) -> str:
        value = self._get(name)
        if value is None:
            return ""
        if isinstance(value, (dict, list)):
            self._problem(name, f"expected text, got a {type(value).__name__}")
            return ""
        return str(value).strip()

    def integer(self, name: str) -> int:
        value = self._get(name)
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self._problem(name, f"expected a whole number such as 12, got {value!r}")
            return 0
        return value

    def boolean(self, name: str) -> bool:
        value = self._get(name)
        if value is None:
            return False
        if not isinstance(value, bool):
            self._problem(name, f"expected true or false, got {value!r}")
            return False
        return value

    def date(self, name: str) -> dt.date:
        value = self._get(name)
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                pass
        if value is not None:
            self._problem(name, f"expected a date YYYY-MM-DD, got {value!r}")
        return dt.date(1970, 1, 1)

    def audience(self, name: str) -> tuple[str, ...] | None:
        value = self.meta.get(name)
        if value is None:
            return None
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            self._problem(name, f"expected a list of tiers such as [key, loyal] ({', '.join(TIERS)})")
            return None
        tiers = [str(t).strip().lower() for t in items]
        unknown = [t for t in tiers if t not in TIERS]
        if unknown:
            self._problem(name, f"unknown tier {', '.join(map(repr, unknown))} (known: {', '.join(TIERS)})")
            return None
        return tuple(t for t in TIERS if t in tiers)

    def reject_unknown(self, known: tuple[str, ...]) -> None:
        """A misspelt key (``imge:``) would otherwise be silently ignored."""
        for key in self.meta:
            if key not in known:
                self._problem(str(key), f"unknown front-matter field (known: {', '.join(known)})")


def _image_size(path: Path, source: Path, field_name: str, problems: list[ContentProblem]) -> tuple[int, int] | None:
    if not path.is_file():
        where = f"{path.parent.parent.name}/{path.parent.name}/"
        problems.append(ContentProblem(source, field_name, f"image file {path.name!r} not found in {where}"))
        return None
    try:
        return _pixel_size(path, path.stat().st_mtime_ns)
    except (UnidentifiedImageError, OSError):
        problems.append(ContentProblem(source, field_name, f"{path.name!r} is not an image Pillow can read"))
        return None


@lru_cache(maxsize=512)
def _pixel_size(path: Path, _mtime: int) -> tuple[int, int]:
    with Image.open(path) as im:   # reads the header only
        return im.size


class _LinkResolver:
    """Relative links and images in the Markdown -> absolute permalinks (site base URL).

    ``02-tasting.md`` -> the article's permalink; ``issue.md`` -> the issue page; ``photo.jpg`` -> the
    published asset; ``/2026-10/`` -> base URL + path. A relative target that does not exist stays as
    written, and preflight reports it as a broken link.
    """

    def __init__(self, cfg, folder: Path):
        self.base = cfg.site.base_url
        self.root = content_root(cfg).resolve()
        self.folder = folder

    def resolve(self, url: str) -> str | None:
        if not url or _ABSOLUTE.match(url):
            return url
        if url.startswith("//"):
            return None
        if url.startswith("/"):
            return self.base.rstrip("/") + url
        path_part, suffix = _split_suffix(url)
        target = (self.folder / unquote(path_part)).resolve()
        if not target.is_file() or self.root not in target.parents:
            return None
        issue_dir = target.parent
        if issue_dir.parent != self.root:
            return None
        if target.name == ISSUE_FILE:
            return issue_url(self.base, issue_dir.name) + suffix
        if target.suffix == ".md":
            parsed = article_slug(target)
            return article_url(self.base, issue_dir.name, parsed[1]) + suffix if parsed else None
        return asset_url(self.base, issue_dir.name, target.name) + suffix

    def image_size(self, url: str) -> tuple[int, int] | None:
        """Pixel size of a local image referenced relative to the folder (for width/height attributes)."""
        if _ABSOLUTE.match(url) or url.startswith("/"):
            return None
        target = (self.folder / unquote(_split_suffix(url)[0])).resolve()
        if not target.is_file():
            return None
        try:
            return _pixel_size(target, target.stat().st_mtime_ns)
        except (UnidentifiedImageError, OSError):
            return None


def link_resolver(cfg, folder: Path):
    """``resolve(url) -> absolute url`` with the rules of ``_LinkResolver`` (unresolvable: returned as written)."""
    resolver = _LinkResolver(cfg, folder)
    return lambda url: resolver.resolve(url) or url


def _split_suffix(url: str) -> tuple[str, str]:
    """``a.md#top`` -> (``a.md``, ``#top``)."""
    cut = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=len(url))
    return url[:cut], url[cut:]


_RAW_URL_ATTR = re.compile(r"""(\b(?:src|href)\s*=\s*)(["'])(.*?)\2""", re.I | re.S)


def _resolve_raw_html(html: str, links: _LinkResolver) -> str:
    """The same link rules for <a href> and <img src> the editor wrote as raw HTML in the Markdown."""
    return _RAW_URL_ATTR.sub(lambda m: f"{m.group(1)}{m.group(2)}{links.resolve(m.group(3)) or m.group(3)}{m.group(2)}", html)


def _render_body(body: str, links: _LinkResolver) -> str:
    """Markdown -> HTML with links made absolute and body images given width/height."""
    tokens = _MD.parse(body)
    for token in tokens:
        if token.type == "html_block":
            token.content = _resolve_raw_html(token.content, links)
        for child in token.children or ():
            if child.type == "html_inline":
                child.content = _resolve_raw_html(child.content, links)
            if child.type == "link_open":
                href = str(child.attrGet("href") or "")
                resolved = links.resolve(href)
                if resolved is not None:
                    child.attrSet("href", resolved)
            elif child.type == "image":
                src = str(child.attrGet("src") or "")
                size = links.image_size(src)
                resolved = links.resolve(src)
                if resolved is not None:
                    child.attrSet("src", resolved)
                if size:
                    w, h = size
                    if w > BODY_IMAGE_MAX_WIDTH:
                        w, h = BODY_IMAGE_MAX_WIDTH, round(h * BODY_IMAGE_MAX_WIDTH / w)
                    child.attrSet("width", str(w))
                    child.attrSet("height", str(h))
    return _MD.renderer.render(tokens, _MD.options, {})
