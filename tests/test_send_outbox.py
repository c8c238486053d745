"""The outbox backend end to end: ledger, messages, re-runs, test copies, second copies — on SQLite and PostgreSQL."""

from __future__ import annotations

import email
import html
from email import policy
from pathlib import Path

import pytest
import sqlalchemy as sa

from _send_helpers import ARTICLE, ISSUE, audience, cli, project, urls, write_build, write_config, write_subscribers
from newsletter.db import deliveries, events, get_engine, sends
from newsletter.errors import UserError
from newsletter.lists import Recipient
from newsletter.send import execute, plan_send, send_issue
from newsletter.send import ledger as L
from newsletter.track.tokens import Signer


def run(cfg, people, **kw):
    plan = plan_send(cfg, ISSUE, audience=people, attention=[], progress=False, **{k: kw.pop(k) for k in list(kw) if k in ("resend_to", "test_address")})
    return execute(cfg, plan, backend="outbox", progress=False, **kw)


def eml_files(cfg, sub: str = "") -> list[Path]:
    return sorted((cfg.path("outbox") / ISSUE / sub).glob("*.eml"))


def parse(path: Path):
    return email.message_from_bytes(path.read_bytes(), policy=policy.default)


def test_every_recipient_gets_one_wellformed_message(tmp_path, db_url):
    cfg = project(tmp_path)
    people = audience(6) + [Recipient("tricky@example.com", "김<b>&", "A&B 상사", "regular", "", False)]
    result = run(cfg, people)
    assert result.done and result.counts["sent"] == 7 and result.sent_now == 7
    files = eml_files(cfg)
    assert len(files) == 7
    signer = Signer.from_env()
    engine = get_engine(db_url)
    with engine.connect() as conn:
        rows = {r.address: r for r in conn.execute(sa.select(deliveries))}
    assert {r.state for r in rows.values()} == {"sent"} and {r.attempts for r in rows.values()} == {1}

    for path in files:
        msg = parse(path)
        to = msg["To"].addresses[0]
        row = rows[to.addr_spec]
        assert msg["Subject"] == "(광고) 가온레터 11월호 — 성수 로스터리 오픈"
        assert msg["From"].addresses[0].display_name == "가온푸드 웹진"
        assert msg["Reply-To"] == "hello@gaonfoods.example"
        assert msg["List-Id"] == "<gaon-webzine.gaonfoods.example>"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["Message-ID"].startswith("<dangol.2026-11.") and msg["Date"]
        raw_headers = path.read_bytes().split(b"\r\n\r\n", 1)[0]
        assert max(raw_headers) < 128, "headers must be 7-bit (RFC 2047 encoded words)"
        https_part, mailto = [p.strip(" <>") for p in msg["List-Unsubscribe"].split(",")]
        assert mailto == "mailto:unsubscribe@gaonfoods.example?subject=unsubscribe"
        assert signer.read_recipient("u", https_part.rsplit("/u/", 1)[1]) == row.id

        assert msg.get_content_type() == "multipart/alternative"
        text_part, html_part = msg.get_payload()
        assert (text_part.get_content_type(), html_part.get_content_type()) == ("text/plain", "text/html")
        text, body = text_part.get_content(), html_part.get_content()
        assert "%%" not in text and "%%" not in body
        variant = "key-loyal" if row.tier in ("key", "loyal") else "all"
        assert f"variant:{variant}" in body and row.variant == variant

        # names: raw in text, escaped in HTML
        assert f"{row.name}님" in text
        assert f"{html.escape(row.name)}님" in body and (row.name == html.escape(row.name) or row.name not in body)

        # every web link is tracked and signed; no address in any URL
        for url in urls(body) + urls(text):
            assert to.addr_spec not in url and to.addr_spec.replace("@", "%40") not in url
            assert url.startswith("https://t.gaonfoods.example/"), url
        clicks = [u for u in urls(html.unescape(body)) + urls(text) if "/c/" in u]
        assert len(clicks) == 3  # two in HTML, one in text; mailto is left alone
        targets = {signer.read_click(u.rsplit("/c/", 1)[1]) for u in clicks}
        assert targets == {(row.id, ARTICLE), (row.id, "https://webzine.gaonfoods.example/2026-11/")}
        assert 'href="mailto:hello@gaonfoods.example"' in body
        pixel = [u for u in urls(body) if "/o/" in u]
        assert signer.read_recipient("o", pixel[0].rsplit("/o/", 1)[1].removesuffix(".gif")) == row.id


def test_rerun_sends_only_to_newcomers(tmp_path, db_url):
    cfg = project(tmp_path)
    first = run(cfg, audience(5))
    assert first.done and len(eml_files(cfg)) == 5

    again = plan_send(cfg, ISSUE, audience=audience(5), attention=[], progress=False)
    assert again.nothing and again.already == 5
    assert run(cfg, audience(5)).send_id is None
    assert len(eml_files(cfg)) == 5

    grown = audience(5) + audience(2, start=100)
    later = run(cfg, grown)
    assert later.sent_now == 2 and later.send_id != first.send_id
    names = [p.name for p in eml_files(cfg)]
    assert len(names) == 7 and sum("user000100" in n or "user000101" in n for n in names) == 2


def test_resume_after_crash_uses_the_files_on_disk(tmp_path, db_url):
    """A dead run left three rows `sending`, two of whose files were written: neither lost nor doubled."""
    cfg = project(tmp_path)
    engine = get_engine(db_url)
    plan = plan_send(cfg, ISSUE, audience=audience(10), attention=[], progress=False)
    send_id = L.create_send(engine, issue=ISSUE, kind="real", backend="outbox", rows=plan.rows)
    ledger = L.Ledger(engine, send_id)
    batch = L.pending_batch(engine, send_id, "all", 0, 3)
    ledger.sending([d.id for d in batch])
    from newsletter.send.backends.base import Job
    from newsletter.send.backends.outbox import OutboxBackend
    from newsletter.send.message import prepare

    signer = Signer.from_env()
    be = OutboxBackend(cfg)
    job = Job(cfg, send_id, "real", prepare(cfg, ISSUE, signer), signer, ledger, engine)
    be.open(job)
    for d in batch[:2]:
        be.path(job, d).write_bytes(b"written before the crash")

    resumed = plan_send(cfg, ISSUE, audience=audience(10), attention=[], progress=False)
    assert resumed.resume_id == send_id and resumed.to_send == 10
    result = execute(cfg, resumed, backend="outbox", progress=False)
    assert result.done and result.recovered == 2 and result.counts["sent"] == 10
    files = eml_files(cfg)
    assert len(files) == 10
    assert sum(p.read_bytes() == b"written before the crash" for p in files) == 2
    with engine.connect() as conn:
        attempts = dict(conn.execute(sa.select(deliveries.c.id, deliveries.c.attempts)).all())
    assert attempts[batch[2].id] == 2 and attempts[batch[0].id] == 1


def test_test_copy_is_marked_and_not_the_real_send(tmp_path, db_url):
    cfg = project(tmp_path)
    result = run(cfg, audience(3), test_address=" Boss@Gaonfoods.example ")
    assert result.kind == "test" and result.done
    (path,) = eml_files(cfg, "test")
    msg = parse(path)
    assert msg["Subject"].startswith("[TEST] (광고) ")
    assert msg["To"].addresses[0].addr_spec == "boss@gaonfoods.example"
    assert eml_files(cfg) == []
    real = run(cfg, audience(3))
    assert real.kind == "real" and real.sent_now == 3


def test_second_copy_goes_only_to_human_non_openers(tmp_path, db_url):
    cfg = project(tmp_path)
    people = audience(6)
    assert run(cfg, people).done
    engine = get_engine(db_url)
    with engine.begin() as conn:
        ids = dict(conn.execute(sa.select(deliveries.c.address, deliveries.c.id)).all())
        conn.execute(events.insert(), [
            {"delivery_id": ids["user000000@example.com"], "issue": ISSUE, "kind": "open", "machine": False},
            {"delivery_id": ids["user000001@example.com"], "issue": ISSUE, "kind": "open", "machine": True},
            {"delivery_id": ids["user000002@example.com"], "issue": ISSUE, "kind": "click", "machine": False},
        ])
    # user000005 unsubscribed since: hygiene dropped them, so no second copy either
    result = run(cfg, people[:5], resend_to="non-openers")
    assert result.kind == "resend" and result.done
    with engine.connect() as conn:
        got = set(conn.scalars(sa.select(deliveries.c.address).where(deliveries.c.send_id == result.send_id)))
    assert got == {f"user00000{i}@example.com" for i in (1, 2, 3, 4)}
    assert len(eml_files(cfg, "resend")) == 4
    assert run(cfg, people[:5], resend_to="non-openers").send_id is None


def test_dry_run_records_nothing(tmp_path, db_url):
    cfg = project(tmp_path)
    write_subscribers(tmp_path, audience(8))
    result = send_issue(cfg, ISSUE, dry_run=True, progress=False)
    assert result.dry_run and result.plan.to_send == 8
    assert result.plan.by_tier == {"key": 2, "loyal": 2, "regular": 2, "prospect": 2}
    assert result.plan.by_variant == {"key-loyal": 4, "all": 4}
    with get_engine(db_url).connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(sends)) == 0
    assert not (tmp_path / "outbox").exists()


def test_unknown_resend_target_and_missing_build_are_user_errors(tmp_path, sqlite_url):
    cfg = project(tmp_path)
    with pytest.raises(UserError, match="non-openers"):
        plan_send(cfg, ISSUE, audience=[], attention=[], resend_to="everyone")
    with pytest.raises(UserError, match="newsletter build 2099-01"):
        plan_send(cfg, "2099-01", audience=[], attention=[])


def test_cli_shows_the_audience_then_sends(tmp_path, sqlite_url):
    write_build(tmp_path)
    write_config(tmp_path)
    write_subscribers(tmp_path, audience(8))
    dry = cli(tmp_path, "send", ISSUE, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "key-loyal" in dry.stdout and "prospect" in dry.stdout and "8 recipients" in dry.stdout
    assert not (tmp_path / "outbox").exists()
    sent = cli(tmp_path, "send", ISSUE, "--json")
    assert sent.returncode == 0, sent.stderr
    import json

    data = json.loads(sent.stdout)
    assert data["done"] and data["counts"]["sent"] == 8 and data["sent_now"] == 8
    assert len(list((tmp_path / "outbox" / ISSUE).glob("*.eml"))) == 8
    missing = cli(tmp_path, "send", "2099-01")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "newsletter build 2099-01" in missing.stderr
