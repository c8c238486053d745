"""content/<issue>/ -> Issue and Article dataclasses (front matter + Markdown rendered to HTML).

An issue is a folder ``content/<issue-id>/`` (e.g. ``content/2026-11/``) holding ``issue.md`` (the
editor's note and the issue's front matter) and one Markdown file per article, ordered by file name
(``01-new-roastery.md`` ...). Images live beside the Markdown.

Permalinks are stable: ``<site>/<issue-id>/`` for an issue, ``<site>/<issue-id>/<slug>/`` for an
article, where the slug is the file name without its number prefix (``new-roastery``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

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
