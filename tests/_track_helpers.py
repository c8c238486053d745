"""Shared by the tracking tests: a real uvicorn server on a loopback port, ledger rows, SendGrid signing."""

from __future__ import annotations

import base64
import datetime as dt
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy as sa
import uvicorn
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from newsletter import db
from newsletter.config import Config
from newsletter.track.app import create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_config(root: Path) -> Config:
    cfg = Config()
    cfg.root = root
    cfg.company.name = "주식회사 가온푸드"
    return cfg


@contextmanager
def live_server(cfg: Config, engine=None):
    """The tracking app on uvicorn in a thread; yields its base URL. Leaving stops it (and flushes events)."""
    app = create_app(cfg, engine)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on", proxy_headers=True, forwarded_allow_ips="127.0.0.1"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("tracking server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive(), "tracking server did not stop"


def add_deliveries(engine, addresses: list[str], *, issue: str = "2026-11",
                   sent_at: dt.datetime | None = None) -> list[int]:
    """One send and a 'sent' ledger row per address, as the send stage writes them; their ids."""
    sent_at = sent_at or db.utcnow() - dt.timedelta(hours=1)
    with engine.begin() as conn:
        send_id = conn.execute(db.sends.insert().values(issue=issue, backend="outbox", status="done")).inserted_primary_key[0]
        ids = []
        for address in addresses:
            ids.append(conn.execute(db.deliveries.insert().values(
                send_id=send_id, issue=issue, address=address, name="", company="", tier="regular",
                state="sent", sent_at=sent_at)).inserted_primary_key[0])
    return ids


def events(engine, kind: str | None = None) -> list:
    e = db.events.c
    query = sa.select(db.events).order_by(e.id)
    if kind:
        query = query.where(e.kind == kind)
    with engine.connect() as conn:
        return list(conn.execute(query))


def suppressions(engine) -> list:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(db.suppressions).order_by(db.suppressions.c.id)))


def count_events(engine, kind: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(db.events).where(db.events.c.kind == kind)).scalar()


class SendGridKey:
    """An ECDSA P-256 key pair standing in for SendGrid's, signing requests as SendGrid does."""

    def __init__(self):
        self.private = ec.generate_private_key(ec.SECP256R1())
        der = self.private.public_key().public_bytes(serialization.Encoding.DER,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo)
        self.public_b64 = base64.b64encode(der).decode()

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.private.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": ts,
        }


def client(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, follow_redirects=False, timeout=30)
