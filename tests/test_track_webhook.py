"""The SendGrid Event Webhook over real HTTP: signatures checked, every event stored once, suppressions."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

from _track_helpers import SendGridKey, add_deliveries, client, events, live_server, make_config, suppressions
from newsletter import db
from newsletter.track.tokens import Signer

PATH = "/webhooks/sendgrid"


@pytest.fixture
def key(monkeypatch) -> SendGridKey:
    key = SendGridKey()
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", key.public_b64)
    return key


@pytest.fixture
def env(db_url, tmp_path, key):
    cfg = make_config(tmp_path)
    engine = db.get_engine(db_url)
    ids = add_deliveries(engine, ["kim@example.com", "lee@example.co.kr", "park@example.com", "choi@example.com"])
    return cfg, engine, ids, Signer.for_config(cfg)


def sg_event(event: str, email: str, n: int, r: str | None = None, **extra) -> dict:
    """An event as SendGrid posts it, with the custom args the sender sets (issue, r)."""
    item = {"email": email, "timestamp": 1793500000 + n, "event": event, "sg_event_id": f"evt-{event}-{n}",
            "sg_message_id": f"msg{n}.filter0001", "category": ["webzine"], "issue": "2026-11"}
    if r:
        item["r"] = r
    item.update(extra)
    return item


def batch(signer: Signer, ids: list[int]) -> list[dict]:
    r = [signer.recipient("r", i) for i in ids]
    return [
        sg_event("processed", "kim@example.com", 0, r[0]),
        sg_event("delivered", "kim@example.com", 1, r[0], response="250 OK"),
        sg_event("open", "kim@example.com", 2, r[0], sg_machine_open=True, useragent="Mozilla/5.0", ip="17.1.2.3"),
        sg_event("open", "kim@example.com", 3, r[0], sg_machine_open=False, useragent="Mozilla/5.0 (iPhone)", ip="1.2.3.4"),
        sg_event("click", "kim@example.com", 4, r[0], url="https://webzine.gaonfoods.example/2026-11/"),
        sg_event("bounce", "LEE@example.co.kr", 5, r[1], type="bounce", status="5.1.1", reason="550 5.1.1 no such user"),
        sg_event("bounce", "park@example.com", 6, r[2], type="blocked", status="5.7.1", reason="550 blocked by policy"),
        sg_event("dropped", "park@example.com", 7, r[2], reason="Bounced Address"),
        sg_event("deferred", "choi@example.com", 8, r[3], response="451 try later", attempt="2"),
        sg_event("spamreport", "choi@example.com", 9),  # no r token: found by issue and address
        sg_event("unsubscribe", "unknown@example.org", 10),  # not in the ledger: stored without a delivery
        sg_event("delivered", "kim@example.com", 11, "r.한.글"),  # a mangled token: found by issue and address
    ]


def post(http, key: SendGridKey, items, **kwargs):
    body = json.dumps(items).encode() if not isinstance(items, bytes) else items
    return http.post(PATH, content=body, headers=key.headers(body, **kwargs))


def test_a_signed_batch_is_stored_and_bounces_and_complaints_suppress(env, key):
    cfg, engine, ids, signer = env
    with live_server(cfg, engine) as base, client(base) as http:
        r = post(http, key, batch(signer, ids))
    assert r.status_code == 200, r.text
    rows = {e.provider_event_id: e for e in events(engine)}
    assert "evt-processed-0" not in rows  # not an event we report on
    kinds = sorted(e.kind for e in rows.values())
    assert kinds == sorted(["delivered", "delivered", "open", "open", "click", "bounce", "bounce", "dropped", "deferred",
                            "complaint", "unsubscribe"])
    assert rows["evt-open-2"].machine is True and rows["evt-open-3"].machine is False
    assert rows["evt-click-4"].url == "https://webzine.gaonfoods.example/2026-11/"
    assert rows["evt-delivered-1"].delivery_id == ids[0] and rows["evt-delivered-1"].issue == "2026-11"
    assert rows["evt-bounce-5"].address == "lee@example.co.kr"  # the ledger's address, not SendGrid's casing
    assert json.loads(rows["evt-bounce-5"].detail)["status"] == "5.1.1"
    assert rows["evt-spamreport-9"].delivery_id == ids[3]
    assert rows["evt-delivered-11"].delivery_id == ids[0]
    assert rows["evt-unsubscribe-10"].delivery_id is None and rows["evt-unsubscribe-10"].address == "unknown@example.org"
    suppressed = {(s.address, s.reason) for s in suppressions(engine) if s.active}
    assert ("lee@example.co.kr", "hard_bounce") in suppressed
    assert ("choi@example.com", "complaint") in suppressed
    assert ("unknown@example.org", "unsubscribed") in suppressed
    assert not any(a == "park@example.com" for a, _ in suppressed)  # 'blocked' and 'dropped' suppress nobody
    with engine.connect() as conn:  # both bounces went through the bounce policy, 'blocked' as temporary
        recorded = {(b.address, b.kind, b.status) for b in conn.execute(sa.select(db.bounces))}
    assert recorded == {("lee@example.co.kr", "permanent", "5.1.1"), ("park@example.com", "temporary", "5.7.1")}


def test_a_replayed_batch_changes_nothing(env, key):
    cfg, engine, ids, signer = env
    items = batch(signer, ids)
    with live_server(cfg, engine) as base, client(base) as http:
        assert post(http, key, items).status_code == 200
        first_events, first_suppressions = len(events(engine)), len(suppressions(engine))
        r = post(http, key, items)  # SendGrid retries: signed again, same sg_event_ids
        assert r.status_code == 200 and "0 stored" in r.text
        r = post(http, key, items[3:5] + [sg_event("open", "kim@example.com", 99, signer.recipient("r", ids[0]))])
        assert r.status_code == 200 and "1 stored, 2 duplicate" in r.text
    assert len(events(engine)) == first_events + 1
    assert len(suppressions(engine)) == first_suppressions


def test_unsigned_missigned_tampered_and_stale_requests_are_refused(env, key):
    cfg, engine, ids, signer = env
    body = json.dumps(batch(signer, ids)).encode()
    other = SendGridKey()
    with live_server(cfg, engine) as base, client(base) as http:
        assert http.post(PATH, content=body, headers={"Content-Type": "application/json"}).status_code == 401
        assert http.post(PATH, content=body, headers=other.headers(body)).status_code == 403
        tampered = body.replace(b"5.1.1", b"5.1.2")
        assert http.post(PATH, content=tampered, headers=key.headers(body)).status_code == 403
        assert post(http, key, body, timestamp=int(time.time()) - 3600).status_code == 403
        headers = key.headers(body) | {"X-Twilio-Email-Event-Webhook-Signature": "not base64!"}
        assert http.post(PATH, content=body, headers=headers).status_code == 403
        headers = key.headers(body) | {"X-Twilio-Email-Event-Webhook-Timestamp": "yesterday"}
        r = http.post(PATH, content=body, headers=headers)
        assert r.status_code == 403 and "Traceback" not in r.text
    assert events(engine) == [] and suppressions(engine) == []


def test_bad_bodies_get_clear_4xx(env, key):
    cfg, engine, ids, signer = env
    with live_server(cfg, engine) as base, client(base) as http:
        body = b"[]"
        r = http.post(PATH, content=body, headers=key.headers(body) | {"Content-Type": "text/plain"})
        assert r.status_code == 415
        huge = b"[" + b'{"event":"open"},' * 80_000 + b'{"event":"open"}]'  # > 1 MB
        assert post(http, key, huge).status_code == 413
        for bad in (b"{not json", b'{"event": "open"}', b'[1, 2]', "[\"\xff\"]".encode("latin-1")):
            r = post(http, key, bad)
            assert r.status_code in (400, 403) and "Traceback" not in r.text and len(r.text) < 200, bad
        assert post(http, key, b"{not json").status_code == 400
        assert post(http, key, []).status_code == 200
    assert events(engine) == []


def test_oddly_typed_events_are_stored_sensibly_not_crashed_on(env, key):
    cfg, engine, ids, signer = env
    items = [
        {"event": ["open"], "email": "kim@example.com", "sg_event_id": "odd-1"},       # not a string: ignored
        {"event": "open", "email": 42, "timestamp": "soon", "sg_event_id": "odd-2", "sg_machine_open": "false"},
        {"event": "click", "email": "kim@example.com", "url": {"x": 1}, "r": 7, "issue": None},  # no sg_event_id
        {"event": "bounce", "email": None, "sg_event_id": "odd-4"},                      # no address: nothing to suppress
    ]
    with live_server(cfg, engine) as base, client(base) as http:
        r = post(http, key, items)
        assert r.status_code == 200 and "3 stored" in r.text and "1 ignored" in r.text
        assert "0 stored, 3 duplicate" in post(http, key, items).text  # the id-less click is recognised too
        assert post(http, key, [[[[]]]] * 3).status_code == 400
        assert post(http, key, b"[" * 100_000 + b"]" * 100_000).status_code == 400
    rows = {e.kind: e for e in events(engine)}
    assert rows["open"].machine is False and rows["open"].address is None
    assert rows["click"].provider_event_id.startswith("sha256:")
    assert suppressions(engine) == []


def test_without_a_configured_key_nothing_is_accepted(db_url, tmp_path, monkeypatch):
    monkeypatch.delenv("SENDGRID_WEBHOOK_PUBLIC_KEY", raising=False)
    cfg = make_config(tmp_path)
    engine = db.get_engine(db_url)
    key = SendGridKey()
    with live_server(cfg, engine) as base, client(base) as http:
        r = post(http, key, [sg_event("delivered", "kim@example.com", 1)])
    assert r.status_code == 503 and "SENDGRID_WEBHOOK_PUBLIC_KEY" in r.text
    assert events(engine) == []


def test_a_bad_public_key_is_a_clear_error_at_start(db_url, tmp_path, monkeypatch):
    from newsletter.errors import UserError
    from newsletter.track.app import create_app

    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", "not-a-key")
    with pytest.raises(UserError, match="SENDGRID_WEBHOOK_PUBLIC_KEY"):
        create_app(make_config(tmp_path), db.get_engine(db_url))


def test_webhook_clicks_from_link_scanners_are_machine_and_people_are_not(env, key):
    cfg, engine, ids, signer = env
    browser = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
    items = [
        sg_event("click", "kim@example.com", 20, signer.recipient("r", ids[0]), url="https://webzine.gaonfoods.example/2026-11/",
                 useragent=browser, ip="211.234.10.20"),
        sg_event("click", "lee@example.co.kr", 21, signer.recipient("r", ids[1]), url="https://webzine.gaonfoods.example/2026-11/",
                 useragent="Mozilla/5.0 (compatible; Proofpoint URL Defense)", ip="211.234.10.21"),
        sg_event("click", "park@example.com", 22, signer.recipient("r", ids[2]), url="https://webzine.gaonfoods.example/2026-11/"),
    ]
    with live_server(cfg, engine) as base, client(base) as http:
        assert post(http, key, items).status_code == 200
    machine = {e.provider_event_id: e.machine for e in events(engine, "click")}
    assert machine == {"evt-click-20": False, "evt-click-21": True, "evt-click-22": True}
