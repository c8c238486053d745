"""The SendGrid Event Webhook: check the signature, then store each event once.

SendGrid signs ``timestamp + raw body`` with ECDSA P-256 (SHA-256, DER, base64) and sends the
signature and timestamp in ``X-Twilio-Email-Event-Webhook-Signature`` / ``-Timestamp``. The public key
(base64 DER, from SendGrid's Mail Settings) comes from ``SENDGRID_WEBHOOK_PUBLIC_KEY`` or
``tracking.sendgrid_public_key``. SendGrid retries anything not 2xx, and may deliver an event twice:
``sg_event_id`` is stored in ``events.provider_event_id`` (unique), so a replay changes nothing.

The sender puts ``issue`` and the recipient token ``r`` into ``custom_args``; SendGrid copies custom
args onto every event, which is how an event finds its ledger row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from dataclasses import dataclass, field

import sqlalchemy as sa
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
from sqlalchemy.engine import Connection, Engine

from .. import bounces, db
from ..errors import UserError
from . import events as ev
from .tokens import Signer

SIGNATURE_HEADER = EventWebhookHeader.SIGNATURE  # X-Twilio-Email-Event-Webhook-Signature
TIMESTAMP_HEADER = EventWebhookHeader.TIMESTAMP  # X-Twilio-Email-Event-Webhook-Timestamp
MAX_AGE_SECONDS = 600  # older (or further in the future) signed requests are replays: refused
MAX_BODY_BYTES = 1024 * 1024  # SendGrid batches stay well under this

# SendGrid event name -> our events.kind
KINDS = {
    "delivered": "delivered", "open": "open", "click": "click", "bounce": "bounce", "dropped": "dropped",
    "deferred": "deferred", "spamreport": "complaint", "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
}
DETAIL_KEYS = ("type", "reason", "status", "response", "attempt", "bounce_classification", "sg_message_id",
               "category", "asm_group_id")


class SignatureError(Exception):
    """The request is not provably from SendGrid (missing, wrong or stale signature)."""

    def __init__(self, message: str, status: int):
        self.status = status
        super().__init__(message)


def public_key(cfg) -> str | None:
    """The configured verification key: the environment wins over config.yaml."""
    key = os.environ.get("SENDGRID_WEBHOOK_PUBLIC_KEY") or getattr(cfg.tracking, "sendgrid_public_key", "")
    return key.strip() or None


@dataclass
class Verifier:
    """Checks SendGrid's signature over the raw body bytes with the ``sendgrid`` package's helper."""

    key: str
    max_age: int = MAX_AGE_SECONDS

    def __post_init__(self):
        try:
            self._helper = EventWebhook(self.key)
        except Exception as exc:  # noqa: BLE001 - cryptography raises several types for a bad key
            raise UserError(f"SendGrid webhook public key is not a base64 DER EC public key ({exc})",
                            where="SENDGRID_WEBHOOK_PUBLIC_KEY") from None

    def check(self, body: bytes, signature: str | None, timestamp: str | None, now: float | None = None) -> None:
        """Return quietly for a fresh, correctly signed body; raise SignatureError (401/403) otherwise."""
        if not signature or not timestamp:
            raise SignatureError("missing signature", 401)
        try:
            sent = int(timestamp)
        except ValueError:
            raise SignatureError("bad timestamp", 403) from None
        if abs((now or time.time()) - sent) > self.max_age:
            raise SignatureError("stale timestamp", 403)
        try:
            payload = body.decode("utf-8")
            ok = self._helper.verify_signature(payload, signature, timestamp)
        except Exception:  # noqa: BLE001 - bad base64, undecodable body, malformed DER: all just "not signed"
            ok = False
        if not ok:
            raise SignatureError("bad signature", 403)


@dataclass
class IngestResult:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    ignored: int = 0
    suppressed: list[str] = field(default_factory=list)  # addresses newly suppressed (complaints, unsubscribes)
    bounces: int = 0  # bounces handed to the bounce policy
    bounce_suppressed: list[str] = field(default_factory=list)  # addresses the bounce policy has suppressed


def parse(body: bytes) -> list[dict]:
    """The JSON array SendGrid posts; ValueError for anything else."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ValueError("expected a JSON array of event objects")
    return data


def _event_id(item: dict) -> str:
    """sg_event_id, or a digest of the event itself so even an id-less replay is recognised."""
    sg_id = item.get("sg_event_id")
    if isinstance(sg_id, str) and sg_id.strip():
        return sg_id.strip()[:200]
    canon = json.dumps(item, sort_keys=True, ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(canon.encode("utf-8")).hexdigest()


def _when(item: dict) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(int(item["timestamp"]), dt.timezone.utc)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return db.utcnow()


def _text(value, limit: int) -> str | None:
    return None if value is None else str(value)[:limit]


def _find_delivery(conn: Connection, item: dict, signer: Signer) -> ev.Delivery | None:
    """The ledger row from the custom arg ``r`` (signed); else the latest delivery of the issue to the address."""
    token = item.get("r")
    if isinstance(token, str) and token.isascii():
        delivery_id = signer.read_recipient("r", token)
        if delivery_id is not None:
            found = ev._delivery_rows(conn, [delivery_id]).get(delivery_id)
            if found is not None:
                return found
    email, issue = item.get("email"), item.get("issue")
    if isinstance(email, str) and isinstance(issue, str):
        d = db.deliveries.c
        row = conn.execute(
            sa.select(d.id).where(d.issue == issue, d.address == email.strip().lower()).order_by(d.id.desc()).limit(1)
        ).first()
        if row is not None:
            return ev._delivery_rows(conn, [row.id])[row.id]
    return None


def _machine(item: dict, kind: str, delivery: ev.Delivery | None) -> bool:
    """Opens: SendGrid's own verdict (sg_machine_open). Clicks: the same scanner rules as our click endpoint."""
    if kind == "open":
        return item.get("sg_machine_open") in (True, 1, "true", "True")
    if kind == "click":
        why = ev.classify_click(_text(item.get("useragent"), 1000) or "", _text(item.get("ip"), 64) or "",
                                _when(item), delivery.sent_at if delivery else None)
        return why is not None
    return False


def _row(item: dict, kind: str, delivery: ev.Delivery | None) -> dict:
    email = item.get("email")
    address = delivery.address if delivery else (email.strip().lower() if isinstance(email, str) else None)
    detail = {k: item[k] for k in DETAIL_KEYS if item.get(k) not in (None, "")}
    return {
        "provider_event_id": _event_id(item),
        "kind": kind,
        "at": _when(item),
        "delivery_id": delivery.id if delivery else None,
        "issue": delivery.issue if delivery else _text(item.get("issue"), 64),
        "address": _text(address, 320),
        "machine": _machine(item, kind, delivery),
        "url": _text(item.get("url"), 4000) if kind == "click" else None,
        "ip": _text(item.get("ip"), 64),
        "user_agent": _text(item.get("useragent"), 1000),
        "detail": json.dumps(detail, ensure_ascii=False, default=str) if detail else None,
    }


SUPPRESSING = {"complaint": "complaint", "unsubscribe": "unsubscribed"}  # suppressed here, at once


def _bounce_kind(item: dict) -> str:
    """SendGrid's ``bounce`` is the mailbox refusing: permanent. ``blocked`` is the receiving server refusing
    us (reputation, policy): temporary, so the bounce policy counts it or holds the domain, never suppresses
    on one."""
    return "temporary" if item.get("type") == "blocked" else "permanent"


def _record_bounce(engine: Engine, cfg, row: dict, item: dict, delivery: ev.Delivery | None) -> bool:
    """Hand a bounce to list hygiene's bounce policy; True if the address is (now or already) suppressed."""
    outcome = bounces.record(
        engine, cfg, address=row["address"], kind=_bounce_kind(item), status=_text(item.get("status"), 16),
        diagnostic=_text(item.get("reason"), 2000) or "",
        digest=hashlib.sha256(("sendgrid:" + row["provider_event_id"]).encode()).hexdigest(),
        send_id=delivery.send_id if delivery else None, issue=row["issue"], at=row["at"],
        raw=json.dumps(item, ensure_ascii=False, default=str),
    )
    return outcome.suppressed


def ingest(engine: Engine, cfg, signer: Signer, items: list[dict]) -> IngestResult:
    """Store every known event once (one transaction), then apply the suppressions they call for.

    Suppressions are applied for replays too (they are idempotent), so a crash between the two steps
    cannot leave a stored bounce without its suppression.
    """
    result = IngestResult(received=len(items))
    rows: list[tuple[dict, dict, ev.Delivery | None]] = []
    with engine.begin() as conn:
        for item in items:
            event = item.get("event")
            kind = KINDS.get(event) if isinstance(event, str) else None
            if kind is None:
                result.ignored += 1  # processed, group_resubscribe, ...: nothing we report on
                continue
            delivery = _find_delivery(conn, item, signer)
            rows.append((_row(item, kind, delivery), item, delivery))
        inserted = ev.insert_ignoring_duplicates(conn, db.events, [r for r, _, _ in rows], "provider_event_id")
        result.stored = len(inserted)
        result.duplicates = len(rows) - len(inserted)
        for row, item, delivery in rows:
            reason = SUPPRESSING.get(row["kind"])
            if reason and row["address"] and ev.suppress(
                    conn, row["address"], reason, "webhook", row["provider_event_id"], at=row["at"]):
                result.suppressed.append(row["address"])
    for row, item, delivery in rows:  # after commit: the bounce policy opens its own transaction
        if row["kind"] == "bounce" and row["address"]:
            result.bounces += 1
            if _record_bounce(engine, cfg, row, item, delivery):
                result.bounce_suppressed.append(row["address"])
    return result
