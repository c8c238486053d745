"""Kill -9 a running ``newsletter send`` halfway, run it again, and count on the server side:
nobody twice, nobody missing unreported. Also Ctrl-C: the request in flight finishes, the rest stays pending."""

from __future__ import annotations

import collections
import json
import random
import signal
import subprocess
import sys
import time

import sqlalchemy as sa

from _send_helpers import ISSUE, audience, write_build, write_config, write_subscribers
from _sendgrid_server import API_KEY, Server as SendGrid
from _smtp_server import Recorder, Server as Smtp
from newsletter.db import deliveries, get_engine


def start(root, backend: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "newsletter", "send", ISSUE, "--backend", backend, "--json"],
                            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"send ended before the kill: {proc.stderr.read()}")
        if time.monotonic() > end:
            raise AssertionError("the send did not get going")
        time.sleep(0.002)


def finish(root, backend: str) -> dict:
    proc = start(root, backend)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return json.loads(out)


def states(db_url) -> collections.Counter:
    with get_engine(db_url).connect() as conn:
        return collections.Counter(conn.scalars(sa.select(deliveries.c.state)))


def unknown_addresses(db_url) -> set[str]:
    with get_engine(db_url).connect() as conn:
        return set(conn.scalars(sa.select(deliveries.c.address).where(deliveries.c.state == "unknown")))


def assert_once(received: collections.Counter, people, unknown: set[str] = frozenset()) -> None:
    """Nobody twice; nobody missing — except, possibly, a recipient the ledger reports as `unknown`.

    A kill between committing `sending` and the server taking the message (the commit's round trip
    and the write of the final dot, or of the request) cannot be told apart from a kill just after it;
    such a row is reported, never silently dropped and never resent blindly (docs/sending.md)."""
    expected = {p.email for p in people}
    twice = {a: n for a, n in received.items() if n > 1}
    missing = expected - set(received)
    assert not twice, f"{len(twice)} recipients got the issue twice"
    assert missing <= unknown, f"{len(missing - unknown)} recipients never got it and are not reported"
    assert set(received) <= expected
    print(f"after the kill: {len(unknown)} unknown, of which {len(missing)} never reached the server")


def test_sigkill_halfway_through_smtp(tmp_path, db_url):
    people = audience(240)
    rec = Recorder(delay=0.004)
    with Smtp(rec) as srv:
        write_build(tmp_path)
        write_config(tmp_path, backend="smtp", concurrency=4, rate_per_second=0,
                     smtp={"host": "127.0.0.1", "port": srv.port})
        write_subscribers(tmp_path, people)
        proc = start(tmp_path, "smtp")
        wait_for(lambda: rec.count >= len(people) // 2, proc)
        time.sleep(random.uniform(0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at = rec.count
        assert killed_at < len(people), "the kill came too late to test anything"
        after_kill = states(db_url)
        result = finish(tmp_path, "smtp")
    assert after_kill["pending"] > 0
    assert_once(collections.Counter(rec.recipients()), people, unknown_addresses(db_url))
    final = states(db_url)
    assert final["sent"] + final["unknown"] == len(people) and final["pending"] == final["sending"] == 0
    assert len(result["unknown"]) == final["unknown"] <= 4, "at most one message per connection was in flight"


def test_sigkill_halfway_through_sendgrid(tmp_path, db_url, monkeypatch):
    people = audience(3000)
    with SendGrid() as sg:
        sg.state.delay = 0.15
        monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
        monkeypatch.setenv("SENDGRID_API_HOST", sg.url)
        write_build(tmp_path)
        write_config(tmp_path, backend="sendgrid", sendgrid={"timeout": 10})
        write_subscribers(tmp_path, people)
        proc = start(tmp_path, "sendgrid")
        wait_for(lambda: sg.state.total >= 1000, proc)
        time.sleep(random.uniform(0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert sg.state.total < len(people), "the kill came too late to test anything"
        result = finish(tmp_path, "sendgrid")
    assert sg.state.invalid == []
    assert_once(sg.state.accepted, people, unknown_addresses(db_url))
    final = states(db_url)
    assert final["sent"] + final["unknown"] == len(people) and final["pending"] == final["sending"] == 0
    assert final["unknown"] <= 1000 and len(result["unknown"]) == final["unknown"], "at most the batch in flight"


def test_ctrl_c_finishes_in_flight_and_leaves_the_rest_pending(tmp_path, sqlite_url):
    people = audience(200)
    rec = Recorder(delay=0.02)
    with Smtp(rec) as srv:
        write_build(tmp_path)
        write_config(tmp_path, backend="smtp", concurrency=2, rate_per_second=0,
                     smtp={"host": "127.0.0.1", "port": srv.port})
        write_subscribers(tmp_path, people)
        proc = start(tmp_path, "smtp")
        wait_for(lambda: rec.count >= 20, proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        data = json.loads(out)
        assert data["interrupted"] and not data["done"]
        mid = states(sqlite_url)
        assert mid["sending"] == mid["unknown"] == 0 and mid["pending"] > 0
        assert mid["sent"] == rec.count, "every message the server took is marked sent"
        finish(tmp_path, "smtp")
    assert_once(collections.Counter(rec.recipients()), people)


def test_ctrl_c_during_a_sendgrid_request_lets_it_finish(tmp_path, sqlite_url, monkeypatch):
    people = audience(3000)
    with SendGrid() as sg:
        sg.state.delay = 0.4
        monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
        monkeypatch.setenv("SENDGRID_API_HOST", sg.url)
        write_build(tmp_path)
        write_config(tmp_path, backend="sendgrid")
        write_subscribers(tmp_path, people)
        proc = start(tmp_path, "sendgrid")
        wait_for(lambda: sg.state.total >= 1, proc)     # the first request is with SendGrid, unanswered
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        data = json.loads(out)
        assert data["interrupted"] and not data["done"] and data["unknown"] == []
        mid = states(sqlite_url)
        assert mid["sent"] == sg.state.total > 0 and mid["pending"] == len(people) - mid["sent"]
        finish(tmp_path, "sendgrid")
    assert_once(sg.state.accepted, people)
    assert sum(sg.state.accepted.values()) == len(people)
