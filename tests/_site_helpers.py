"""Helpers for the site, preview and Chromium tests: build the example site, read its HTML the way a
crawler or a chat app's link preview would."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from newsletter.config import load_config
from newsletter.content import list_issues, load_issue
from newsletter.site import SiteResult, build_site


def build_example_site(project: Path, out: Path | None = None) -> tuple[object, list, SiteResult]:
    cfg = load_config(project / "config.yaml")
    issues = [load_issue(cfg, i) for i in list_issues(cfg)]
    result = build_site(cfg, issues, out or project / "build" / "site")
    return cfg, issues, result


class PageParser(HTMLParser):
    """Collects what a link-preview bot and a link checker look at."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.links: dict[str, str] = {}       # rel -> href
        self.refs: list[str] = []             # every href/src in the body and head
        self.html_lang: str | None = None
        self.title = ""
        self._in_title = False
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.html_lang = a.get("lang")
        if tag == "meta":
            key = a.get("property") or a.get("name")
            if key:
                self.meta[key] = a.get("content", "")
        if tag == "link" and a.get("rel"):
            self.links.setdefault(a["rel"], a.get("href", ""))
        for attr in ("href", "src"):
            if a.get(attr) is not None:
                self.refs.append(a[attr])
        if tag == "title":
            self._in_title = True

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        self.text.append(data)


def parse_page(path: Path) -> PageParser:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def url_to_file(site_dir: Path, base_url: str, url: str) -> Path:
    """The file in build/site that serves an absolute site URL (``/x/`` -> ``x/index.html``)."""
    assert url.startswith(base_url.rstrip("/") + "/"), url
    path = urlsplit(url).path.lstrip("/")
    target = site_dir / path
    return target / "index.html" if path == "" or path.endswith("/") else target


def resolve_relative(site_dir: Path, page: Path, ref: str) -> Path:
    """Where a relative href/src on a page points inside the site folder, as a browser would resolve it."""
    page_url = "http://site/" + page.relative_to(site_dir).as_posix()
    path = urlsplit(urljoin(page_url, ref)).path.lstrip("/")
    target = site_dir / path
    return target / "index.html" if path == "" or path.endswith("/") else target
