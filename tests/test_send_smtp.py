"""The SMTP backend against a real aiosmtpd server on 127.0.0.1 — on SQLite and PostgreSQL."""

from __future__ import annotations

import collections

import pytest
import sqlalchemy as sa

from _send_helpers import ISSUE, audience, project
from _smtp_server import Recorder, Server, self_signed
from newsletter.db import bounces, deliveries, get_engine, suppressions
from newsletter.send import execute, plan_send
from newsletter.track.tokens import Signer


def smtp_project(tmp_path, port, **smtp):
    return project(tmp_path, backend="smtp", concurrency=smtp.pop("concurrency", 4), rate_per_second=0,
                   smtp={"host": "127.0.0.1", "port": port, "timeout": 5, **smtp})


def send(cfg, people):
    plan = plan_send(cfg, ISSUE, audience=people, attention=[], progress=False)
    return execute(cfg, plan, backend="smtp", progress=False)


def test_every_recipient_once_over_a_pool_with_auth(tmp_path, db_url, monkeypatch):
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
    rec = Recorder()
    people = audience(40)
    with Server(rec, auth=True) as srv:
        cfg = smtp_project(tmp_path, srv.port, username="webzine")
        result = send(cfg, people)
    assert result.done and result.counts["sent"] == 40
    got = collections.Counter(rec.recipients())
    assert set(got) == {p.email for p in people} and max(got.values()) == 1
    assert 1 <= len(rec.logins) <= 4, "connections are reused: one login per pooled connection"
    msgs = rec.parsed()
    assert len({m["Message-ID"] for m in msgs}) == 40
    assert all(m["Subject"].startswith("(광고) ") and m["List-Unsubscribe-Post"] for m in msgs)
    signer = Signer.from_env()
    with get_engine(db_url).connect() as conn:
        rows = {r.address: r for r in conn.execute(sa.select(deliveries))}
    for m in msgs:
        row = rows[m["To"].addresses[0].addr_spec]
        unsub = m["List-Unsubscribe"].split(",")[0].strip(" <>")
        assert signer.read_recipient("u", unsub.rsplit("/u/", 1)[1]) == row.id
        assert row.state == "sent" and row.attempts == 1 and row.provider_id.startswith("2.0.0 Ok: queued as Q")


def test_wrong_password_is_one_clear_error(tmp_path, sqlite_url, monkeypatch):
    monkeypatch.setenv("SMTP_PASSWORD", "wrong")
    from newsletter.errors import UserError

    with Server(Recorder(), auth=True) as srv:
        cfg = smtp_project(tmp_path, srv.port, username="webzine")
        with pytest.raises(UserError, match="SMTP login as 'webzine' refused"):
            send(cfg, audience(3))
    with get_engine(sqlite_url).connect() as conn:
        assert set(conn.scalars(sa.select(deliveries.c.state))) == {"pending"}


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls(tmp_path, sqlite_url, monkeypatch, security):
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
    rec = Recorder()
    with Server(rec, auth=True, tls=(cert, key), implicit_tls=security == "ssl") as srv:
        cfg = smtp_project(tmp_path, srv.port, security=security, username="webzine")
        result = send(cfg, audience(5))
    assert result.done and rec.count == 5 and rec.logins


def test_refusals_are_bounces_and_a_spike_pauses_the_send(tmp_path, db_url):
    rec = Recorder()
    people = audience(60)
    bad = [p.email for p in people[5:12]]       # 7 refusals early in the send
    for address in bad:
        rec.refuse[address] = "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
    with Server(rec) as srv:
        cfg = smtp_project(tmp_path, srv.port, concurrency=1, rejection_window=40, rejection_spike=0.05)
        result = send(cfg, people)
    assert result.paused and "refused by the server" in result.paused and "5.1.1" in result.paused
    assert not result.done
    engine = get_engine(db_url)
    with engine.connect() as conn:
        states = dict(conn.execute(sa.select(deliveries.c.address, deliveries.c.state)).all())
        recorded = {r.address: r for r in conn.execute(sa.select(bounces))}
    failed = {a for a, s in states.items() if s == "failed"}
    assert len(failed) >= 3 and failed <= set(bad)
    assert all(states[a] in ("failed", "pending") for a in bad)
    assert set(recorded) == failed and {r.kind for r in recorded.values()} == {"permanent"}
    assert all(recorded[a].status == "5.1.1" for a in failed)
    with engine.connect() as conn:   # the bounce policy suppressed them: the next hygiene drops them
        suppressed = set(conn.scalars(sa.select(suppressions.c.address).where(suppressions.c.active.is_(True))))
    assert failed <= suppressed
    assert states and list(states.values()).count("pending") > 0, "the rest waits for the operator"
    assert set(rec.recipients()) == {a for a, s in states.items() if s == "sent"}


def test_temporary_refusal_stays_pending_and_a_rerun_delivers(tmp_path, db_url):
    rec = Recorder()
    people = audience(6)
    rec.refuse[people[2].email] = "451 4.7.1 Greylisted, try again later"
    with Server(rec) as srv:
        cfg = smtp_project(tmp_path, srv.port, rejection_spike=0)
        first = send(cfg, people)
        assert not first.done and first.counts["pending"] == 1 and first.counts["sent"] == 5
        rec.refuse.clear()
        second = send(cfg, people)
    assert second.done and second.sent_now == 1
    assert sorted(rec.recipients()) == sorted(p.email for p in people)


def test_server_down_leaves_everything_pending(tmp_path, sqlite_url):
    from _smtp_server import free_port

    cfg = smtp_project(tmp_path, free_port())
    result = send(cfg, audience(4))
    assert not result.done and result.counts["pending"] == 4 and result.counts["unknown"] == 0
    assert any("cannot connect" in n for n in result.notes)
