"""Links for sales staff: the issue's and each article's permalink, attributed to a rep, ready to paste.

A rep pastes them into a KakaoTalk or e-mail message to a customer. ``?ref=<rep>`` lets the tracking
server count the visit for that rep without cookies (the page's canonical URL stays clean).

Articles meant only for some tiers (``audience: [key, loyal]``) are included and marked: reps mostly talk
to key customers, and the marker tells them whom the article is for.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from dataclasses import dataclass
from urllib.parse import quote

from .config import Config
from .content import Issue, article_url, issue_url, load_issue
from .errors import UserError

FORMATS = ("text", "csv", "json")
REP_ID = re.compile(r"^[\w.-]{1,64}$")  # what the tracking server accepts as ?ref= (track.app.REF)
TIER_LABELS = {"key": "주요", "loyal": "단골", "regular": "일반", "prospect": "신규"}
CSV_COLUMNS = ("issue", "kind", "order", "slug", "title", "summary", "audience", "rep", "url")


@dataclass
class ShareLink:
    kind: str                  # "issue" | "article"
    order: int                 # 0 for the issue, then the articles' order
    slug: str                  # "" for the issue
    title: str
    summary: str
    url: str                   # permalink, with ?ref=<rep> when a rep is given
    audience: list[str] | None  # tiers the article is for; None = everyone
    audience_label: str        # "주요·단골 고객 전용", "" for everyone


@dataclass
class ShareLinks:
    issue: str
    number: int
    title: str
    rep: str | None
    company: str
    links: list[ShareLink]

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def check_rep(rep: str | None) -> str | None:
    """A rep id as it appears in the lists' owner column (``rep-kim``); rejects what would mangle a URL."""
    if rep is None:
        return None
    rep = rep.strip()
    if not REP_ID.match(rep):
        raise UserError(
            f"--rep {rep!r}: expected a sales rep id such as rep-kim (letters, digits, '.', '-', '_'; "
            "at most 64 characters)"
        )
    return rep


def with_ref(url: str, rep: str | None) -> str:
    return f"{url}?ref={quote(rep, safe='')}" if rep else url


def audience_label(audience) -> str:
    if not audience:
        return ""
    return "·".join(TIER_LABELS.get(t, t) for t in audience) + " 고객 전용"


def share_links(cfg: Config, issue_id: str | None = None, rep: str | None = None, *, issue: Issue | None = None) -> ShareLinks:
    """The permalinks of an issue (default: the newest) and its articles, attributed to ``rep``."""
    rep = check_rep(rep)
    issue = issue or load_issue(cfg, issue_id)
    base = cfg.site.base_url
    links = [ShareLink("issue", 0, "", issue.title, issue.preheader, with_ref(issue_url(base, issue.id), rep), None, "")]
    for a in issue.articles:
        audience = list(a.audience) if a.audience else None
        links.append(
            ShareLink(
                "article", a.order, a.slug, a.title, a.summary,
                with_ref(article_url(base, issue.id, a.slug), rep), audience, audience_label(audience),
            )
        )
    return ShareLinks(issue.id, issue.number, issue.title, rep, cfg.company.name, links)


# ---------------------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------------------


def as_text(s: ShareLinks) -> str:
    """A friendly Korean message: an opening line, the issue link, then one block per article to pick from."""
    head, *articles = s.links
    lines = [
        f"안녕하세요, {s.company}입니다.",
        f"이번 달 웹진이 나왔습니다 — 「{s.title}」",
        "사장님께 도움이 될 만한 소식을 골라 보내 드립니다.",
        "",
        "▶ 이번 호 전체 보기",
        head.url,
    ]
    for link in articles:
        mark = f"[{link.audience_label}] " if link.audience_label else ""
        lines += ["", f"■ {mark}{link.title}", link.summary, f"👉 {link.url}"]
    lines += ["", "궁금하신 점은 언제든 편하게 연락 주세요. 감사합니다."]
    return "\n".join(lines) + "\n"


def as_csv(s: ShareLinks) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for link in s.links:
        w.writerow([
            s.issue, link.kind, link.order, link.slug, link.title, link.summary,
            ";".join(link.audience or ()), s.rep or "", link.url,
        ])
    return out.getvalue()


def render(s: ShareLinks, fmt: str) -> str:
    import json

    if fmt == "text":
        return as_text(s)
    if fmt == "csv":
        return as_csv(s)
    if fmt == "json":
        return json.dumps(s.as_dict(), ensure_ascii=False, indent=2) + "\n"
    raise UserError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
