"""Event recording: the machine-open classifier, idempotent unsubscribes, and no event lost to a locked database."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from _track_helpers import add_deliveries, client, count_events, events, live_server, make_config, suppressions
from newsletter import db
from newsletter.track import events as ev
from newsletter.track.app import PIXEL
from newsletter.track.tokens import Signer

NOW = dt.datetime(2026, 11, 3, 1, 0, tzinfo=dt.timezone.utc)
LONG_AGO = NOW - dt.timedelta(hours=3)
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"


@pytest.mark.parametrize("ua, ip, sent_at, expected", [
    (IPHONE, "211.234.10.5", LONG_AGO, None),                                    # a reader on an iPhone
    ("Mozilla/5.0", "211.234.10.5", LONG_AGO, "apple-mpp-user-agent"),          # MPP's bare user agent
    (" Mozilla/5.0 ", "211.234.10.5", LONG_AGO, "apple-mpp-user-agent"),
    (IPHONE, "17.253.4.1", LONG_AGO, "apple-proxy-address"),                    # Apple's 17.0.0.0/8
    (IPHONE, "::ffff:17.1.1.1", LONG_AGO, "apple-proxy-address"),
    (IPHONE, "18.0.0.1", LONG_AGO, None),
    ("Mozilla/5.0 (compatible; YahooMailProxy)", "98.1.1.1", LONG_AGO, "prefetch-user-agent"),
    ("Barracuda Sentinel (EE)", "64.1.1.1", LONG_AGO, "prefetch-user-agent"),
    ("", "1.2.3.4", LONG_AGO, "no-user-agent"),
    (IPHONE, "211.234.10.5", NOW - dt.timedelta(seconds=3), "right-after-delivery"),
    (IPHONE, "211.234.10.5", NOW - dt.timedelta(minutes=5), None),
    (IPHONE, "211.234.10.5", None, None),                                       # not sent yet: no timing rule
    ("Mozilla/5.0 (via ggpht.com GoogleImageProxy)", "66.249.1.1", LONG_AGO, None),  # Gmail fetches on open
    ("Mozilla/5.0 (via ggpht.com GoogleImageProxy)", "66.249.1.1", NOW - dt.timedelta(seconds=1), "right-after-delivery"),
])
def test_classify_open(ua, ip, sent_at, expected):
    assert ev.classify_open(ua, ip, NOW, sent_at) == expected


def test_classify_open_treats_naive_sent_at_as_utc():
    naive = (NOW - dt.timedelta(seconds=2)).replace(tzinfo=None)  # as SQLite returns it
    assert ev.classify_open(IPHONE, "1.2.3.4", NOW, naive) == "right-after-delivery"


@pytest.mark.parametrize("ua, machine", [
    ("facebookexternalhit/1.1; kakaotalk-scrap/1.0; +https://devtalk.kakao.com/", True),
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", True),
    ("Mozilla/5.0 (compatible; Yeti/1.1; +https://naver.me/spd)", True),
    ("", True),
    (IPHONE + " KAKAOTALK 10.4.5", False),  # KakaoTalk's in-app browser: a person tapped the link
])
def test_classify_visit(ua, machine):
    assert (ev.classify_visit(ua) is not None) == machine


@pytest.mark.parametrize("ua, ip, sent_at, expected", [
    (IPHONE, "211.234.10.5", LONG_AGO, None),                                    # a reader tapping a link
    ("Mozilla/5.0", "211.234.10.5", LONG_AGO, None),                             # MPP's user agent: opens only
    (IPHONE, "17.253.4.1", LONG_AGO, None),                                      # Apple's network: opens only
    (IPHONE, "40.107.22.9", LONG_AGO, "scanner-address"),                        # Microsoft EOP / Defender
    (IPHONE, "::ffff:64.235.150.1", LONG_AGO, "scanner-address"),                # Barracuda ESS
    ("Mozilla/5.0 (compatible; Proofpoint URL Defense)", "8.8.8.8", LONG_AGO, "prefetch-user-agent"),
    ("Mimecast-URL-Protect/1.0", "8.8.8.8", LONG_AGO, "prefetch-user-agent"),
    ("Cisco IronPort", "8.8.8.8", LONG_AGO, "prefetch-user-agent"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0", "8.8.8.8", LONG_AGO, "prefetch-user-agent"),
    ("", "8.8.8.8", LONG_AGO, "no-user-agent"),
    (IPHONE, "211.234.10.5", NOW - dt.timedelta(seconds=4), "right-after-delivery"),
])
def test_classify_click(ua, ip, sent_at, expected):
    assert ev.classify_click(ua, ip, NOW, sent_at) == expected


def test_click_bursts_need_several_distinct_links_close_together():
    bursts = ev.ClickBursts()
    at = lambda s: NOW + dt.timedelta(seconds=s)  # noqa: E731
    # a reader: the same link twice, then another one, then a third after a pause
    assert [bursts.add(1, at(0), "a"), bursts.add(1, at(0.5), "a"), bursts.add(1, at(1), "b"),
            bursts.add(1, at(3.5), "c")] == [None, None, None, None]
    # a scanner: three distinct links within two seconds; the burst began at its first click
    assert [bursts.add(2, at(0), "a"), bursts.add(2, at(0.3), "b"), bursts.add(2, at(0.6), "c"),
            bursts.add(2, at(0.9), "d")] == [None, None, at(0), at(0)]
    assert bursts.add(3, at(0.4), "a") is None  # per delivery


def test_a_burst_marks_the_clicks_before_it_even_from_earlier_batches(db_url):
    engine = db.get_engine(db_url)
    scanned, reader = add_deliveries(engine, ["kim@example.com", "lee@example.co.kr"])
    bursts = ev.ClickBursts()
    t0 = db.utcnow()
    click = lambda d, s, url: ev.click_hit(d, url, "8.8.8.8", IPHONE, at=t0 + dt.timedelta(seconds=s))  # noqa: E731
    ev.record_hits(engine, [click(scanned, 0, "https://x.example/a"), click(reader, 0, "https://x.example/a")],
                   bursts=bursts)
    ev.record_hits(engine, [click(scanned, 0.4, "https://x.example/b")], bursts=bursts)
    assert not any(r.machine for r in events(engine, "click"))  # two links: not yet a burst
    ev.record_hits(engine, [click(scanned, 0.8, "https://x.example/c"), click(reader, 5, "https://x.example/b")],
                   bursts=bursts)
    rows = events(engine, "click")
    assert [(r.delivery_id, r.machine, r.detail) for r in rows] == [
        (scanned, True, "click-burst"), (reader, False, None), (scanned, True, "click-burst"),
        (scanned, True, "click-burst"), (reader, False, None)]


def test_unsubscribe_and_suppress_are_idempotent(db_url):
    engine = db.get_engine(db_url)
    (a,) = add_deliveries(engine, ["kim@example.com"], issue="2026-11")
    (b,) = add_deliveries(engine, ["kim@example.com"], issue="2026-12")
    first = ev.record_unsubscribe(engine, a, "1.2.3.4", "UA")
    again = ev.record_unsubscribe(engine, a)
    other_issue = ev.record_unsubscribe(engine, b)
    assert (first.new, again.new, other_issue.new) == (True, False, False)
    assert ev.record_unsubscribe(engine, 424242) is None
    assert [(s.address, s.reason, s.source) for s in suppressions(engine)] == [("kim@example.com", "unsubscribed", "tracking")]
    assert count_events(engine, "unsubscribe") == 1


def test_record_hits_skips_unknown_deliveries_and_fills_the_ledger_fields(db_url):
    engine = db.get_engine(db_url)
    (known,) = add_deliveries(engine, ["lee@example.co.kr"], issue="2026-10")
    written = ev.record_hits(engine, [ev.open_hit(known, "1.2.3.4", IPHONE), ev.open_hit(999_999, "1.2.3.4", IPHONE),
                                      ev.visit_hit("/2026-10/", "rep-kim", "2026-10", "1.2.3.4", IPHONE)])
    assert written == 2
    rows = events(engine)
    assert [(r.kind, r.delivery_id, r.address, r.issue) for r in rows] == [
        ("open", known, "lee@example.co.kr", "2026-10"), ("visit", None, None, "2026-10")]


def test_insert_ignoring_duplicates(db_url):
    engine = db.get_engine(db_url)
    row = {"kind": "delivered", "provider_event_id": "sg-1", "at": NOW, "machine": False}
    with engine.begin() as conn:
        assert ev.insert_ignoring_duplicates(conn, db.events, [row, dict(row, provider_event_id="sg-2")],
                                             "provider_event_id") == ["sg-1", "sg-2"]
        assert ev.insert_ignoring_duplicates(conn, db.events, [row], "provider_event_id") == []
    assert count_events(engine, "delivered") == 2


# --- a briefly locked database -------------------------------------------------------------------


@contextmanager
def locked(db_url: str):
    """Hold the database's write lock (SQLite) or the events and suppressions tables (PostgreSQL); yields a release()."""
    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(db_url.split("///", 1)[1], isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")
        release = lambda: conn.execute("COMMIT")  # noqa: E731
    else:
        conn = sa.create_engine(db_url).connect()
        conn.execute(sa.text("LOCK TABLE events, suppressions IN EXCLUSIVE MODE"))
        release = conn.commit
    try:
        yield release
    finally:
        try:
            release()
        except Exception:  # noqa: BLE001 - already released
            pass
        conn.close()


def impatient_engine(db_url: str):
    """For SQLite, an engine that fails at once on a lock (no busy timeout), so the app's own retries are tested."""
    if db_url.startswith("sqlite"):
        return sa.create_engine(db_url, connect_args={"timeout": 0.01})
    return db.get_engine(db_url)


def test_a_locked_database_delays_events_but_loses_none(db_url, tmp_path):
    cfg = make_config(tmp_path)
    ids = add_deliveries(db.get_engine(db_url), ["kim@example.com", "lee@example.co.kr"])
    signer = Signer.for_config(cfg)
    engine = impatient_engine(db_url)
    results = {}
    with live_server(cfg, engine) as base, client(base) as http:
        with locked(db_url) as release:
            for _ in range(5):  # the pixel still answers at once; its open waits in the queue
                r = http.get(f"/o/{signer.recipient('o', ids[0])}.gif", headers={"User-Agent": IPHONE})
                assert (r.status_code, r.content) == (200, PIXEL)
            unsubscribing = threading.Thread(target=lambda: results.update(
                unsub=http.post(f"/u/{signer.recipient('u', ids[1])}", data={"List-Unsubscribe": "One-Click"})))
            unsubscribing.start()
            time.sleep(0.8)
            assert count_events(db.get_engine(db_url), "open") == 0  # still locked out
            assert unsubscribing.is_alive()  # the unsubscribe waits for the database, it does not fail
            release()
            unsubscribing.join(20)
        assert results["unsub"].status_code == 200
        deadline = time.monotonic() + 10
        while count_events(db.get_engine(db_url), "open") < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
    check = db.get_engine(db_url)
    assert count_events(check, "open") == 5
    assert [s.address for s in suppressions(check)] == ["lee@example.co.kr"]


def test_stopping_while_locked_flushes_the_queue_once_the_lock_goes(db_url, tmp_path):
    cfg = make_config(tmp_path)
    ids = add_deliveries(db.get_engine(db_url), ["kim@example.com"])
    signer = Signer.for_config(cfg)
    with locked(db_url) as release:
        with live_server(cfg, impatient_engine(db_url)) as base, client(base) as http:
            for i in range(20):
                http.get(f"/c/{signer.recipient('r', ids[0])}~{signer.link(f'https://gaonfoods.example/{i}')}")
            threading.Timer(1.0, release).start()
        # leaving live_server waited for the shutdown, which waited for the lock and wrote the queue
        assert count_events(db.get_engine(db_url), "click") == 20


def test_retrying_rides_out_transient_errors_and_gives_up_with_databasebusy():
    from sqlalchemy.exc import IntegrityError, OperationalError

    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return "done"

    assert ev.retrying(flaky) == "done" and len(calls) == 3

    def locked_forever():
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    with pytest.raises(ev.DatabaseBusy, match="database is locked"):
        ev.retrying(locked_forever, deadline=0.2)

    def broken():  # not transient: no retry
        calls.append(1)
        raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))

    calls.clear()
    with pytest.raises(IntegrityError):
        ev.retrying(broken)
    assert len(calls) == 1


def test_a_database_locked_too_long_gets_a_short_503_and_the_retry_succeeds(sqlite_url, tmp_path, monkeypatch):
    from _track_helpers import SendGridKey

    monkeypatch.setattr(ev, "BUSY_SECONDS", 0.3)
    key = SendGridKey()
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", key.public_b64)
    cfg = make_config(tmp_path)
    (delivery,) = add_deliveries(db.get_engine(sqlite_url), ["kim@example.com"])
    signer = Signer.for_config(cfg)
    body = b'[{"event": "delivered", "email": "kim@example.com", "sg_event_id": "e1", "issue": "2026-11"}]'
    unsubscribe = f"/u/{signer.recipient('u', delivery)}"
    with live_server(cfg, impatient_engine(sqlite_url)) as base, client(base) as http:
        with locked(sqlite_url):
            for r in (http.post("/webhooks/sendgrid", content=body, headers=key.headers(body)),
                      http.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})):
                assert r.status_code == 503 and "retry" in r.text
                assert "Traceback" not in r.text and len(r.text) < 200
        assert http.post("/webhooks/sendgrid", content=body, headers=key.headers(body)).status_code == 200
        assert http.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    check = db.get_engine(sqlite_url)
    assert count_events(check, "delivered") == 1 and count_events(check, "unsubscribe") == 1
    assert [s.address for s in suppressions(check)] == ["kim@example.com"]
