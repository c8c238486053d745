"""The SendGrid backend: the real ``sendgrid`` client against a local server that validates every body
against the official schema and answers 202 / 429 / 500 / 400 / hang — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import html
import time
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from _send_helpers import ISSUE, audience, cli, project
from _sendgrid_server import API_KEY, Server
from newsletter.db import deliveries, get_engine, sends
from newsletter.errors import UserError
from newsletter.lists import Recipient
from newsletter.send import execute, plan_send
from newsletter.track.tokens import Signer


@pytest.fixture
def sg(monkeypatch):
    with Server() as server:
        monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
        monkeypatch.setenv("SENDGRID_API_HOST", server.url)
        yield server.state


def sg_project(tmp_path, **opts):
    return project(tmp_path, backend="sendgrid",
                   sendgrid={"categories": ["webzine", "가온레터"], "timeout": 5, "retries": 2, "backoff": 0.01, **opts})


def send(cfg, people, **kw):
    plan = plan_send(cfg, ISSUE, audience=people, attention=[], progress=False)
    return execute(cfg, plan, backend="sendgrid", progress=False, **kw)


def ledger(db_url) -> dict:
    with get_engine(db_url).connect() as conn:
        return {r.address: r for r in conn.execute(sa.select(deliveries))}


def substitute(text: str, subs: dict) -> str:
    """What SendGrid does with a personalization's substitutions."""
    for k, v in subs.items():
        text = text.replace(k, v)
    return text


def test_batches_of_1000_with_per_recipient_substitutions(tmp_path, db_url, sg):
    cfg = sg_project(tmp_path)
    people = audience(2100) + [Recipient("amp@example.com", "김&<이>", "A&B", "regular", "", False)]
    result = send(cfg, people)
    assert result.done and result.counts["sent"] == 2101
    assert sg.invalid == []
    assert sg.requests == 4 and all(len(b["personalizations"]) <= 1000 for b in sg.bodies)
    assert set(sg.accepted) == {p.email for p in people} and set(sg.accepted.values()) == {1}
    assert any("가온레터" in n for n in result.notes)

    rows = ledger(db_url)
    signer = Signer.from_env()
    for body in sg.bodies:
        assert body["categories"] == ["webzine", ISSUE] and "send_at" not in body and "batch_id" not in body
        assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert body["subject"].startswith("(광고) ")
        text, markup = (c["value"] for c in body["content"])
        for p in body["personalizations"]:
            (to,) = p["to"]
            row = rows[to["email"]]
            assert p["custom_args"]["issue"] == ISSUE
            assert signer.read_recipient("r", p["custom_args"]["r"]) == row.id
            assert signer.read_recipient("u", p["headers"]["List-Unsubscribe"].split("/u/")[1].split(">")[0]) == row.id
            t, h = substitute(text, p["substitutions"]), substitute(markup, p["substitutions"])
            assert "%%" not in t and "%%" not in h
            assert f"{row.name}님" in t and f"{html.escape(row.name)}님" in h
            assert to["email"] not in h and to["email"] not in t
            assert f"variant:{row.variant}" in h
    assert rows["amp@example.com"].provider_id and rows["amp@example.com"].attempts == 1


def test_429_waits_for_the_reset_then_sends(tmp_path, db_url, sg):
    sg.script.extend([("429", 0.6)])
    cfg = sg_project(tmp_path)
    start = time.monotonic()
    result = send(cfg, audience(8))
    assert time.monotonic() - start >= 0.5
    assert result.done and sg.requests == 3 and sg.total == 8


def test_5xx_retries_with_backoff_then_leaves_rows_pending(tmp_path, db_url, sg):
    cfg = sg_project(tmp_path)
    sg.script.extend([("500",), ("202",)])
    people = audience(4, start=0)
    assert send(cfg, people).done

    sg.script.extend([("500",)] * 3)       # retries: 2 -> three failures give up
    more = people + audience(4, start=50)
    result = send(cfg, more)
    assert not result.done and result.counts["pending"] == 4 and result.counts["unknown"] == 0
    assert any("kept failing" in n for n in result.notes)
    again = send(cfg, more)
    assert again.done and sg.total == 8 and set(sg.accepted.values()) == {1}


def test_400_marks_the_batch_failed_with_the_providers_message(tmp_path, db_url, sg):
    sg.script.append(("400", "The from address does not match a verified Sender Identity."))
    cfg = sg_project(tmp_path)
    result = send(cfg, audience(3))         # variant "all" (1) fails, variant "key-loyal" (2) goes
    assert result.counts["failed"] == 1 and result.counts["sent"] == 2
    assert "verified Sender Identity" in result.failed[0][1]
    assert send(cfg, audience(3)).send_id is None, "a failed row is not retried by a plain re-run"


def test_timeout_after_the_request_left_is_unknown_and_not_resent(tmp_path, db_url, sg):
    cfg = sg_project(tmp_path, timeout=0.5)
    sg.script.append(("hang", 1.5))
    people = [p for p in audience(8) if p.tier in ("regular", "prospect")]
    result = send(cfg, people)
    assert result.counts["unknown"] == 4 and sorted(result.unknown) == sorted(p.email for p in people)
    assert result.done, "nothing is pending: unknown rows wait for the operator"
    time.sleep(1.2)
    assert send(cfg, people).send_id is None
    assert sg.total == 4 and set(sg.accepted.values()) == {1}


def test_scheduled_send_carries_send_at_and_a_cancellable_batch(tmp_path, db_url, sg):
    from newsletter.send.backends.sendgrid import cancel_scheduled

    cfg = sg_project(tmp_path)
    when = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(hours=5)
    result = send(cfg, audience(4), scheduled_for=when)
    assert result.done and len(sg.batches) == 1
    assert {b["send_at"] for b in sg.bodies} == {int(when.timestamp())}
    assert {b["batch_id"] for b in sg.bodies} == set(sg.batches)
    engine = get_engine(db_url)
    done = cancel_scheduled(cfg, engine, ISSUE)
    assert (done.batch_id, done.send_id, done.recipients, done.scheduled_for) == (sg.batches[0], result.send_id, 4, when)
    assert sg.scheduled_sends == [{"batch_id": sg.batches[0], "status": "cancel"}]
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sends.c.status)) == "cancelled"
        assert set(conn.scalars(sa.select(deliveries.c.state))) == {"cancelled"}
    again = send(cfg, audience(4))          # after a cancel the audience can be sent to afresh
    assert again.done and again.sent_now == 4 and "send_at" not in sg.bodies[-1]


def test_cli_cancel_stops_the_scheduled_send_at_sendgrid(tmp_path, db_url, sg):
    cfg = sg_project(tmp_path)
    nothing = cli(tmp_path, "send", ISSUE, "--cancel")
    assert nothing.returncode == 2 and "Traceback" not in nothing.stderr
    assert nothing.stderr.strip().splitlines() == [nothing.stderr.strip()] and "nothing to cancel" in nothing.stderr
    when = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0) + dt.timedelta(hours=5)
    first = send(cfg, audience(4), scheduled_for=when)
    assert first.done and len(sg.batches) == 1 and sg.total == 4

    out = cli(tmp_path, "send", ISSUE, "--cancel")
    assert out.returncode == 0, out.stderr
    assert sg.scheduled_sends == [{"batch_id": sg.batches[0], "status": "cancel"}]
    assert f"cancelled send {first.send_id} of {ISSUE}" in out.stdout and sg.batches[0] in out.stdout
    seoul = when.astimezone(ZoneInfo("Asia/Seoul"))
    assert f"scheduled for {seoul:%Y-%m-%d} (" in out.stdout and f"{seoul:%H:%M} KST" in out.stdout
    assert "4 recipients now cancelled" in out.stdout
    assert {r.state for r in ledger(db_url).values()} == {"cancelled"}
    with get_engine(db_url).connect() as conn:
        assert conn.scalar(sa.select(sends.c.status).where(sends.c.id == first.send_id)) == "cancelled"

    twice = cli(tmp_path, "send", ISSUE, "--cancel")
    assert twice.returncode == 2 and "nothing to cancel" in twice.stderr and len(sg.scheduled_sends) == 1


def test_cancel_refused_by_sendgrid_or_too_late_changes_nothing(tmp_path, db_url, sg):
    cfg = sg_project(tmp_path)
    when = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(hours=5)
    first = send(cfg, audience(2), scheduled_for=when)
    engine = get_engine(db_url)
    with engine.begin() as conn:   # a batch id SendGrid does not know: it answers 400
        conn.execute(sends.update().where(sends.c.id == first.send_id).values(batch_id="not-a-batch"))
    out = cli(tmp_path, "send", ISSUE, "--cancel", "--json")
    assert out.returncode == 2 and "SendGrid did not cancel batch not-a-batch: 400 batch_id: invalid batch id" in out.stderr
    assert sg.scheduled_sends == [] and {r.state for r in ledger(db_url).values()} == {"sent"}
    from newsletter.send.backends.sendgrid import cancel_scheduled

    with pytest.raises(UserError, match="went out at"):
        cancel_scheduled(cfg, engine, ISSUE, now=when + dt.timedelta(minutes=1))
    assert {r.state for r in ledger(db_url).values()} == {"sent"}


def test_far_schedule_sends_without_send_at(tmp_path, sqlite_url, sg):
    cfg = sg_project(tmp_path)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=5)
    send(cfg, audience(2), scheduled_for=later)
    assert sg.batches == [] and all("send_at" not in b for b in sg.bodies)


def test_no_api_key_is_a_clear_error(tmp_path, sqlite_url, monkeypatch):
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    cfg = sg_project(tmp_path)
    with pytest.raises(UserError, match="SENDGRID_API_KEY"):
        send(cfg, audience(2))


def test_connection_refused_leaves_rows_pending(tmp_path, sqlite_url, monkeypatch):
    from _smtp_server import free_port

    monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
    monkeypatch.setenv("SENDGRID_API_HOST", f"http://127.0.0.1:{free_port()}")
    result = send(sg_project(tmp_path), audience(3))
    assert result.counts["pending"] == 3 and result.counts["unknown"] == 0 and not result.done


def test_retry_unknown_is_the_operators_explicit_choice(tmp_path, db_url, sg):
    cfg = sg_project(tmp_path, timeout=0.5)
    sg.script.append(("hang", 1.0))
    people = [p for p in audience(4) if p.tier in ("regular", "prospect")]
    first = send(cfg, people)
    assert first.counts["unknown"] == 2
    time.sleep(0.8)
    plan = plan_send(cfg, ISSUE, audience=people, attention=[], progress=False)
    again = execute(cfg, plan, backend="sendgrid", progress=False, retry_unknown=True)
    assert again.send_id == first.send_id and again.sent_now == 2 and again.counts["unknown"] == 0
    assert any("put back to pending" in n for n in again.notes)
    assert sg.total == 4, "the hung request had reached SendGrid: the explicit retry duplicates, as documented"
