"""Bounce policy on a real database (SQLite and PostgreSQL): suppress, count, protect key customers, hold domains."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
import sqlalchemy as sa
from _lists_helpers import BOUNCES, csv_bytes, make_config, write
from typer.testing import CliRunner

from newsletter import db
from newsletter.bounces import ingest, record, unsuppress
from newsletter.cli import app
from newsletter.errors import UserError
from newsletter.lists import clean_lists

NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture
def env(db_url, tmp_path):
    cfg = make_config(tmp_path)
    write(tmp_path / "lists" / "key-customers.csv", csv_bytes(
        [("KC-1", "김대표", "가온상사", "Boss@Gaon-Trade.co.kr", "rep-kim")],
        header=("고객번호", "이름", "회사", "이메일", "담당자")))  # Korean headers, mapped by lists.header_map
    return cfg, db.get_engine(db_url)


def _send(engine, addresses, *, key=(), sent_at=NOW, issue="2026-11") -> int:
    with engine.begin() as conn:
        send_id = conn.execute(db.sends.insert().values(issue=issue, kind="real", backend="outbox", status="done")
                               ).inserted_primary_key[0]
        for a in addresses:
            conn.execute(db.deliveries.insert().values(send_id=send_id, issue=issue, address=a, key=a in key,
                                                       state="sent", sent_at=sent_at))
    return send_id


def _bounce(cfg, engine, address, kind="temporary", status="4.2.2", diagnostic="mailbox busy", send_id=None,
            at=None, tag=""):
    digest = hashlib.sha256(f"{address}{send_id}{status}{at}{tag}".encode()).hexdigest()
    return record(engine, cfg, address=address, kind=kind, status=status, diagnostic=diagnostic, digest=digest,
                  send_id=send_id, at=at)


def _active(engine):
    with engine.connect() as conn:
        return {r.address: r.reason for r in conn.execute(
            sa.select(db.suppressions.c.address, db.suppressions.c.reason).where(db.suppressions.c.active.is_(True)))}


def test_ingest_corpus_is_idempotent_and_keeps_the_raw_message(env):
    cfg, engine = env
    first = ingest(engine, cfg, [BOUNCES])
    again = ingest(engine, cfg, [BOUNCES])
    assert [o.action for _r, o in again] == ["duplicate"] * 16
    assert sorted(o.action for _r, o in first).count("suppressed") == 11
    active = _active(engine)
    assert active["haneul.song@naver.com"] == "complaint"
    assert active["jungwoo.kim@naver.com"] == "hard_bounce"
    assert "hyemin.yoon@pureunlogis.co.kr" not in active  # one temporary bounce only counts
    with engine.connect() as conn:
        rows = conn.execute(sa.select(db.bounces)).all()
        evidence = conn.execute(sa.select(db.suppressions.c.evidence).where(
            db.suppressions.c.address == "jungwoo.kim@naver.com")).scalar()
    assert len(rows) == 16
    p001 = next(r for r in rows if r.path.endswith("p-001.eml"))
    assert p001.digest == hashlib.sha256((BOUNCES / "p-001.eml").read_bytes()).hexdigest() == evidence
    assert "Recipient address rejected: User unknown" in p001.raw


def test_three_temporary_bounces_on_distinct_sends_in_the_window_suppress(env):
    cfg, engine = env
    a = "slow@example.co.kr"
    s1 = _send(engine, [a], sent_at=NOW - dt.timedelta(days=60))
    assert _bounce(cfg, engine, a, send_id=s1, at=NOW - dt.timedelta(days=59)).action == "counted"
    assert _bounce(cfg, engine, a, send_id=s1, at=NOW - dt.timedelta(days=58), tag="retry").action == "counted"
    s2 = _send(engine, [a], sent_at=NOW - dt.timedelta(days=30))
    assert _bounce(cfg, engine, a, send_id=s2, at=NOW - dt.timedelta(days=29)).detail == "2 of 3 temporary bounces"
    s3 = _send(engine, [a], sent_at=NOW - dt.timedelta(days=1))
    outcome = _bounce(cfg, engine, a, send_id=s3, at=NOW)
    assert (outcome.action, outcome.reason) == ("suppressed", "soft_bounce")
    assert _active(engine) == {a: "soft_bounce"}


def test_bounces_older_than_the_window_do_not_count(env):
    cfg, engine = env
    a = "old@example.co.kr"
    for days in (200, 150, 1):
        send_id = _send(engine, [a], sent_at=NOW - dt.timedelta(days=days))
        outcome = _bounce(cfg, engine, a, send_id=send_id, at=NOW - dt.timedelta(days=days - 1))
    assert outcome.action == "counted" and outcome.detail == "1 of 3 temporary bounces"


def test_a_successful_delivery_after_temporary_bounces_resets_the_count(env):
    cfg, engine = env
    a = "flaky@example.co.kr"
    s1 = _send(engine, [a], sent_at=NOW - dt.timedelta(days=40))
    s2 = _send(engine, [a], sent_at=NOW - dt.timedelta(days=30))
    _bounce(cfg, engine, a, send_id=s1, at=NOW - dt.timedelta(days=39))
    _bounce(cfg, engine, a, send_id=s2, at=NOW - dt.timedelta(days=29))
    _send(engine, [a], sent_at=NOW - dt.timedelta(days=10))  # delivered, no bounce
    s4 = _send(engine, [a], sent_at=NOW - dt.timedelta(days=1))
    outcome = _bounce(cfg, engine, a, send_id=s4, at=NOW)
    assert (outcome.action, outcome.detail) == ("counted", "1 of 3 temporary bounces")
    assert _active(engine) == {}


@pytest.mark.parametrize("address,via", [("vip@example.co.kr", "deliveries"), ("boss@gaon-trade.co.kr", "roster")])
def test_key_customer_is_never_suppressed_by_temporary_bounces(env, address, via):
    cfg, engine = env
    key = (address,) if via == "deliveries" else ()
    outcomes = []
    for days in (30, 20, 10):
        send_id = _send(engine, [address], key=key, sent_at=NOW - dt.timedelta(days=days))
        outcomes.append(_bounce(cfg, engine, address, send_id=send_id, at=NOW - dt.timedelta(days=days - 1)))
    assert outcomes[-1].action == "key_protected" and "key customer" in outcomes[-1].alert
    assert _active(engine) == {}


def test_hard_bounce_of_a_key_customer_suppresses_and_shows_in_attention(env, tmp_path):
    cfg, engine = env
    outcome = _bounce(cfg, engine, "BOSS@gaon-trade.co.kr", kind="permanent", status="5.1.1", diagnostic="user unknown")
    assert outcome.suppressed and outcome.reason == "hard_bounce"
    sub = write(tmp_path / "s.csv", csv_bytes([("boss@gaon-trade.co.kr", "김대표", "가온상사", "key", "", "", "rep-kim"),
                                               ("staff@gaon-trade.co.kr", "", "", "regular", "", "", "")]))
    result = clean_lists(cfg, subscribers=sub, engine=engine, progress=False)
    assert [r.email for r in result.audience] == ["staff@gaon-trade.co.kr"]
    [a] = result.attention
    assert (a.email, a.reason, a.owner) == ("boss@gaon-trade.co.kr", "hard_bounce", "rep-kim")


def test_domain_block_holds_the_domain_and_suppresses_nobody(env, tmp_path):
    cfg, engine = env
    naver = [f"user{i}@naver.com" for i in range(4)]
    send_id = _send(engine, [*naver, "other@daum.net"])
    first = _bounce(cfg, engine, naver[0], kind="permanent", status="5.7.1",
                    diagnostic="554 5.7.1 Message rejected by policy", send_id=send_id)
    assert first.action == "suppressed"  # one address alone looks like a mailbox problem
    _bounce(cfg, engine, naver[1], status="4.7.0", diagnostic="421 4.7.0 try again later", send_id=send_id)
    third = _bounce(cfg, engine, naver[2], kind="permanent", status="5.7.1", diagnostic="554 5.7.1 policy",
                    send_id=send_id)
    assert third.action == "domain_hold" and "3 of 4 recipients" in third.detail
    assert _active(engine) == {}  # the early suppression was undone, with its history kept
    with engine.connect() as conn:
        undone = conn.execute(sa.select(db.suppressions).where(db.suppressions.c.address == naver[0])).one()
        hold = conn.execute(sa.select(db.domain_holds)).one()
    assert not undone.active and "domain hold on naver.com" in undone.undo_reason
    assert (hold.domain, hold.active, hold.send_id) == ("naver.com", True, send_id)
    # a user-unknown at a held domain is still a dead mailbox
    assert _bounce(cfg, engine, naver[3], kind="permanent", status="5.1.1", send_id=send_id).reason == "hard_bounce"

    sub = write(tmp_path / "s.csv", csv_bytes([(naver[1], "", "", "regular", "", "", ""),
                                               ("other@daum.net", "", "", "regular", "", "", "")]))
    result = clean_lists(cfg, subscribers=sub, engine=engine, progress=False)
    assert [r.email for r in result.audience] == ["other@daum.net"]
    assert [r.reason for r in result.rejected] == ["held:naver.com"]
    assert result.summary["domain_holds"] == ["naver.com"]
    assert unsuppress(engine, "@naver.com", "postmaster unblocked us") == 1
    assert len(clean_lists(cfg, subscribers=sub, engine=engine, progress=False).audience) == 2


@pytest.mark.parametrize("status,diagnostic", [
    ("5.7.515", "550 5.7.515 Access denied, sending domain does not meet the required authentication level"),
    ("5.7.26", "550-5.7.26 Unauthenticated email from gaonfoods-letter.kr is not accepted"),
    ("5.7.1", "554 5.7.1 Email rejected per DMARC policy for gaonfoods-letter.kr"),
])
def test_sender_authentication_failures_alert_and_suppress_nobody(env, status, diagnostic):
    cfg, engine = env
    outcome = _bounce(cfg, engine, "kim@outlook.com", kind="permanent", status=status, diagnostic=diagnostic)
    assert outcome.action == "auth_alert" and "SPF, DKIM and DMARC" in outcome.alert
    assert _active(engine) == {}


def test_unsuppress_keeps_history_and_needs_a_reason(env):
    cfg, engine = env
    _bounce(cfg, engine, "back@example.co.kr", kind="permanent", status="5.1.1")
    with pytest.raises(UserError, match="say why"):
        unsuppress(engine, "back@example.co.kr", " ")
    assert unsuppress(engine, "Back@Example.co.kr", "new mailbox confirmed by phone") == 1
    with engine.connect() as conn:
        row = conn.execute(sa.select(db.suppressions)).one()
    assert (row.active, row.undo_reason) == (False, "new mailbox confirmed by phone") and row.undone_at
    with pytest.raises(UserError, match="not suppressed"):
        unsuppress(engine, "back@example.co.kr", "again")


def test_cli_ingest_and_unsuppress(env, db_url, tmp_path):
    cfg, engine = env
    runner = CliRunner()
    cfg_path = tmp_path / "none.yaml"
    res = runner.invoke(app, ["bounces", "ingest", str(BOUNCES / "p-001.eml"), str(BOUNCES / "p-005.eml"),
                              "--json", "--config", str(cfg_path)], env={"DATABASE_URL": db_url})
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [(d["recipient"], d["action"]) for d in data] == [("jungwoo.kim@naver.com", "suppressed"), (None, "ignored")]
    res = runner.invoke(app, ["lists", "unsuppress", "jungwoo.kim@naver.com", "--reason", "typo in our CRM",
                              "--config", str(cfg_path)], env={"DATABASE_URL": db_url})
    assert res.exit_code == 0 and "1 suppression(s) lifted" in res.output
    assert _active(engine) == {}
