"""Fixtures for the send tests: a built issue in the documented manifest format, a config, an audience."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from newsletter.config import load_config
from newsletter.lists import Recipient

ISSUE = "2026-11"
SUBJECT = "(광고) 가온레터 11월호 — 성수 로스터리 오픈"
ARTICLE = "https://webzine.gaonfoods.example/2026-11/new-roastery/?utm_source=mail&utm_medium=email"

HTML = """<!doctype html><html><body>
<p>%%name%%님, %%company%% 안녕하세요. {variant}</p>
<a href="{article_escaped}">새 로스터리</a>
<a href='https://webzine.gaonfoods.example/2026-11/'>웹에서 보기</a>
<a href="mailto:hello@gaonfoods.example">문의</a>
<a href="%%unsubscribe_url%%">수신거부</a>
<img src="%%open_url%%" width="1" height="1" alt="">
</body></html>
"""
TEXT = """%%name%%님 안녕하세요 ({variant}).

새 로스터리: {article}.
수신거부: %%unsubscribe_url%%
"""


def write_build(root: Path, issue: str = ISSUE, *, ad: bool = True, subject: str = SUBJECT) -> Path:
    """build/<issue>/ exactly as docs/architecture.md describes it (two variants)."""
    folder = root / "build" / issue
    variants = {
        "all": {"tiers": ["regular", "prospect"], "html": "email.html", "text": "email.txt", "eml": "email.eml"},
        "key-loyal": {"tiers": ["key", "loyal"], "html": "key-loyal/email.html", "text": "key-loyal/email.txt",
                      "eml": "key-loyal/email.eml"},
    }
    for name, v in variants.items():
        (folder / v["html"]).parent.mkdir(parents=True, exist_ok=True)
        (folder / v["html"]).write_text(
            HTML.format(variant=f"variant:{name}", article_escaped=ARTICLE.replace("&", "&amp;")), encoding="utf-8")
        (folder / v["text"]).write_text(TEXT.format(variant=f"variant:{name}", article=ARTICLE), encoding="utf-8")
    manifest = {
        "issue": issue, "subject": subject, "preheader": "이번 달 소식", "ad": ad, "number": 12, "date": "2026-11-03",
        "variants": variants,
        "tier_variant": {"key": "key-loyal", "loyal": "key-loyal", "regular": "all", "prospect": "all"},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return folder


def write_config(root: Path, **send) -> Path:
    data = {
        "sender": {"from_name": "가온푸드 웹진", "from_email": "webzine@gaonfoods.example",
                   "reply_to": "hello@gaonfoods.example", "list_id": "gaon-webzine.gaonfoods.example",
                   "unsubscribe_mailto": "unsubscribe@gaonfoods.example"},
        "tracking": {"base_url": "https://t.gaonfoods.example"},
        "send": {"backend": "outbox", **send},
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def project(root: Path, **send):
    """A config and a built issue under root; returns the loaded Config."""
    write_build(root)
    return load_config(write_config(root, **send))


TIERS = ("key", "loyal", "regular", "prospect")


def audience(n: int, *, start: int = 0, domain: str = "example.com") -> list[Recipient]:
    return [
        Recipient(email=f"user{i:06d}@{domain}", name=f"고객{i}", company=f"회사{i}", tier=TIERS[i % 4],
                  owner="rep-kim" if i % 4 == 0 else "", key=i % 4 == 0)
        for i in range(start, start + n)
    ]


def write_subscribers(root: Path, people: list[Recipient]) -> Path:
    """lists/subscribers.csv for the CLI path (newsletter send runs list hygiene itself)."""
    path = root / "lists" / "subscribers.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["email", "name", "company", "tier", "owner"])
        for p in people:
            w.writerow([p.email, p.name, p.company, p.tier, p.owner])
    return path


URL = re.compile(r"https?://[^\s\"'<>]+")


def urls(text: str) -> list[str]:
    """URLs as a reader sees them (a full stop after a URL ends the sentence, not the URL)."""
    return [u.rstrip(".,;:!?") for u in URL.findall(text)]


def cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    """``newsletter ARGS`` in a real process in ``root`` (wide terminal: one line stays one line)."""
    return subprocess.run([sys.executable, "-m", "newsletter", *args], cwd=root, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "200"})
