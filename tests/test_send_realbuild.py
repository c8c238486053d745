"""The example issue, really built (Markdown -> MJML -> inlined HTML), sent to the example lists after
real list hygiene: through the outbox and through SendGrid (schema-validated bodies)."""

from __future__ import annotations

import email
import html
import re
from email import policy

import pytest

from _send_helpers import urls
from _sendgrid_server import API_KEY, Server
from newsletter.config import load_config
from newsletter.content import load_issue
from newsletter.lists import clean_lists
from newsletter.render import build_issue, load_built
from newsletter.send import send_issue
from newsletter.track.tokens import Signer

ISSUE = "2026-11"


@pytest.fixture
def built(project):
    cfg = load_config(project / "config.yaml")
    build_issue(cfg, load_issue(cfg, ISSUE))
    return cfg


def test_outbox_send_of_the_real_build(built, db_url):
    cfg = built
    audience = clean_lists(cfg, progress=False).audience
    manifest = load_built(cfg, ISSUE)
    result = send_issue(cfg, ISSUE, backend="outbox", progress=False)
    assert result.done and result.counts["sent"] == len(audience) > 10
    files = sorted((cfg.path(cfg.paths.outbox) / ISSUE).glob("*.eml"))
    assert len(files) == len(audience)
    signer = Signer.from_env()
    tracking = cfg.tracking.base_url
    by_address = {r.email: r for r in audience}
    for path in files:
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert msg["Subject"] == manifest.subject and msg["Subject"].startswith("(광고)")
        to = msg["To"].addresses[0]
        person = by_address[to.addr_spec]
        text_part, html_part = msg.get_payload()
        text, body = text_part.get_content(), html_part.get_content()
        assert not re.search(r"%%\w+%%", text + body)
        assert "수신거부" in text and "수신거부" in body and cfg.company.business_registration in text
        if person.name:
            assert person.name in text and html.escape(person.name) in body
        hrefs = re.findall(r'href="([^"]+)"', body)
        assert hrefs and all(h.startswith(tracking + "/") or h.startswith("mailto:") for h in hrefs)
        for url in urls(html.unescape(body)) + urls(text):
            assert to.addr_spec not in url
            if "/c/" in url:
                delivery, target = signer.read_click(url.rsplit("/c/", 1)[1])
                assert target.startswith("https://")
        pixel = re.search(r'src="(' + re.escape(tracking) + r'/o/([^"]+)\.gif)"', body)
        assert pixel and signer.read_recipient("o", pixel.group(2)) == delivery


def test_sendgrid_bodies_of_the_real_build_validate(built, db_url, monkeypatch):
    with Server() as sg:
        monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
        monkeypatch.setenv("SENDGRID_API_HOST", sg.url)
        result = send_issue(built, ISSUE, backend="sendgrid", progress=False)
    state = sg.state
    assert result.done and state.invalid == [] and state.requests == 2   # one body per variant
    assert sum(state.accepted.values()) == result.counts["sent"] == len(set(state.accepted))
    for body in state.bodies:
        text, markup = (c["value"] for c in body["content"])
        for p in body["personalizations"]:
            filled = markup
            for k, v in p["substitutions"].items():
                filled = filled.replace(k, v)
            assert not re.search(r"%%\w+%%", filled)
            assert p["to"][0]["email"] not in filled
