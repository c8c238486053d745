"""The whole monthly job, end to end, as a user runs it: the CLI on the example project, then a
recipient's real actions (open, click, one-click unsubscribe) against the tracking server, then what
the next list cleaning and the report make of them. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import email
import email.policy
import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from newsletter import db
from newsletter.config import load_config
from newsletter.db import get_engine

from _track_helpers import live_server


def newsletter(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "newsletter", *args], cwd=project,
                          capture_output=True, text=True, timeout=180)


def ok(project: Path, *args: str) -> str:
    done = newsletter(project, *args)
    assert done.returncode == 0, f"newsletter {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done.stdout


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def test_build_clean_send_then_a_recipient_opens_clicks_and_unsubscribes(project, db_url):
    ok(project, "build", "2026-11")
    ok(project, "lists", "clean")
    attention_before = list(csv.DictReader((project / "build/lists/attention.csv").open(encoding="utf-8-sig")))
    audience = list(csv.DictReader((project / "build/lists/audience.csv").open(encoding="utf-8-sig")))
    ok(project, "send", "2026-11", "--backend", "outbox")

    outbox = sorted((project / "outbox/2026-11").glob("*.eml"))
    assert len(outbox) == len(audience) > 0
    sent_to = {email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["To"].addresses[0].addr_spec
               for p in outbox}
    assert sent_to == {row["email"] for row in audience}

    # a key customer reads this issue
    key_row = next(row for row in audience if row["key"] == "true")
    message = next(m for m in (email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in outbox)
                   if m["To"].addresses[0].addr_spec == key_row["email"])
    assert message["Subject"].startswith("(광고)")
    html = message.get_body(("html",)).get_content()
    assert "%%" not in html  # every merge field filled
    web_urls = [u for u in re.findall(r'(?:href|src)="([^"]+)"', html) + re.findall(r"<([^>]+)>", message["List-Unsubscribe"])
                if u.startswith("http")]
    assert web_urls and not [u for u in web_urls if "@" in u or "%40" in u.lower()]  # no address in any URL
    pixel = re.search(r'<img src="([^"]+/o/[^"]+\.gif)"', html).group(1)
    click = next(u for u in re.findall(r'href="([^"]+/c/[^"]+)"', html))
    unsubscribe = re.search(r"<(https://[^>]+/u/[^>]+)>", message["List-Unsubscribe"]).group(1)

    cfg = load_config(project / "config.yaml")
    engine = get_engine(cfg)
    # the recipient reads it an hour later (a fetch seconds after delivery is a scanner's, not a person's)
    with engine.begin() as conn:
        conn.execute(db.deliveries.update().values(sent_at=db.utcnow() - dt.timedelta(hours=1)))
    with live_server(cfg, engine) as base:
        with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as http:
            browser = {"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
                                     "(KHTML, like Gecko) Version/17.0 Safari/605.1.15"}
            assert http.get(_path(pixel), headers=browser).headers["content-type"] == "image/gif"
            hop = http.get(_path(click), headers=browser)
            assert hop.status_code == 302 and hop.headers["location"].startswith(cfg.site.base_url)
            # RFC 8058 one-click, as a mailbox provider sends it: no cookies, no redirect
            done = http.post(_path(unsubscribe), data={"List-Unsubscribe": "One-Click"})
            assert done.status_code == 200

    # the next cleaning honours the unsubscribe, and the key customer lands in the attention report
    ok(project, "lists", "clean")
    audience_after = {row["email"] for row in csv.DictReader((project / "build/lists/audience.csv").open(encoding="utf-8-sig"))}
    assert key_row["email"] not in audience_after
    assert len(audience_after) == len(audience) - 1
    attention = list(csv.DictReader((project / "build/lists/attention.csv").open(encoding="utf-8-sig")))
    assert {"email": key_row["email"], "reason": "unsubscribed"}.items() <= next(
        a for a in attention if a["email"] == key_row["email"]).items()
    assert len(attention) == len(attention_before) + 1

    report = json.loads(ok(project, "report", "2026-11", "--json"))
    text = json.dumps(report, ensure_ascii=False)
    overall = report["overall"]
    assert overall["sent"] == len(audience)
    assert (overall["opened"], overall["clickers"], overall["unsubscribed"]) == (1, 1, 1), text[:2000]
