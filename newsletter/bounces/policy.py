"""What a bounce does to the list: record it (idempotent), then suppress, count, hold a domain or alert.

- a permanent bounce suppresses the address (``hard_bounce``); an ARF complaint suppresses it (``complaint``);
- temporary bounces suppress (``soft_bounce``) after ``bounces.temporary_threshold`` of them on distinct
  sends within ``bounces.temporary_window_days`` — never a key customer — and a successful delivery after
  them starts the count again;
- when most recipients of one domain fail in the same send with a policy or connection code (5.7.x, 4.x.x),
  the domain is held (``domain_holds``) and none of its addresses is suppressed for it;
- a sender-authentication rejection (Microsoft 5.7.515, 5.7.26, 5.7.1 citing SPF/DKIM/DMARC) is our own
  configuration error: an alert, and nobody is suppressed.

Every bounce row keeps the raw message (or its path) and digest, so a suppression can be explained and undone.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .. import db
from ..config import Config
from ..errors import UserError
from ..lists.normalize import canonicalize

AUTH_STATUSES = ("5.7.515", "5.7.26", "5.7.25", "5.7.27", "5.7.7", "5.7.23", "5.7.509")
_AUTH_TEXT = re.compile(r"\b(dmarc|spf|dkim|sender authentication|not authenticated|unauthenticated|"
                        r"authentication (failed|required)|access denied.*auth)", re.I)
MIN_DOMAIN_FAILURES = 2  # one failing address is a mailbox problem, not a domain block


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """What recording one bounce did. ``action``: duplicate | ignored | suppressed | counted | key_protected |
    domain_hold | auth_alert."""

    address: str | None
    kind: str
    action: str
    suppressed: bool = False
    reason: str | None = None  # suppression reason when suppressed
    detail: str = ""
    alert: str | None = None


def is_auth_failure(status: str | None, diagnostic: str) -> bool:
    """Our mail failed sender authentication: fix SPF/DKIM/DMARC, do not blame the recipient."""
    if status in AUTH_STATUSES:
        return True
    return bool(status and status.startswith("5.7.") and _AUTH_TEXT.search(diagnostic or ""))


def is_block_code(status: str | None, kind: str) -> bool:
    """A policy or connection failure (5.7.x, 4.x.x), the kind a whole receiving domain gives when it blocks us."""
    if status:
        return status.startswith("5.7.") or status.startswith("4.")
    return kind == "temporary"


def _now() -> dt.datetime:
    return db.utcnow()


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)  # SQLite gives naive datetimes back; they were UTC
    return value


def record(engine, cfg: Config, *, address, kind, status, diagnostic, digest, path=None, raw=None,
           send_id=None, issue=None, at: dt.datetime | None = None) -> RecordOutcome:
    """Record one bounce for one address and apply the policy (see the module docstring)."""
    address = canonicalize(address) if address else None
    at = at or _now()
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    b = db.bounces
    with engine.begin() as conn:
        exists = conn.execute(sa.select(b.c.id).where(b.c.digest == digest, _eq(b.c.address, address))).first()
        if exists:
            return RecordOutcome(address, kind, "duplicate", detail="this message was recorded before")
        try:
            with conn.begin_nested():
                conn.execute(b.insert().values(address=address, kind=kind, status=status, diagnostic=diagnostic,
                                               send_id=send_id, issue=issue, digest=digest, path=path, raw=raw, at=at))
        except IntegrityError:  # the same message ingested concurrently
            return RecordOutcome(address, kind, "duplicate", detail="this message was recorded before")
        if kind == "not_a_bounce" or not address:
            return RecordOutcome(address, kind, "ignored", detail="not a delivery failure")
        if kind == "complaint":
            return _suppress(conn, address, "complaint", digest, at, kind)
        if is_auth_failure(status, diagnostic):
            alert = (f"sender authentication rejected by {address.rpartition('@')[2]} ({status}): "
                     f"check SPF, DKIM and DMARC of {cfg.sender.from_email}; nobody was suppressed")
            return RecordOutcome(address, kind, "auth_alert", detail=diagnostic or "", alert=alert)
        domain = address.rpartition("@")[2]
        if is_block_code(status, kind):
            held = _domain_block(conn, cfg, domain, send_id, at)
            if held:
                return RecordOutcome(address, kind, "domain_hold", detail=held, alert=held)
        if kind == "permanent":
            return _suppress(conn, address, "hard_bounce", digest, at, kind)
        return _temporary(conn, cfg, address, digest, at, kind)


def _eq(column, value):
    return column.is_(None) if value is None else column == value


def _suppress(conn, address, reason, evidence, at, kind) -> RecordOutcome:
    s = db.suppressions
    active = conn.execute(sa.select(s.c.reason).where(s.c.address == address, s.c.active.is_(True))).first()
    if active:
        return RecordOutcome(address, kind, "suppressed", True, active.reason, "already suppressed")
    conn.execute(s.insert().values(address=address, reason=reason, at=at, source="bounce", evidence=evidence,
                                   active=True))
    return RecordOutcome(address, kind, "suppressed", True, reason, f"suppressed as {reason}")


def _temporary(conn, cfg, address, digest, at, kind) -> RecordOutcome:
    b, d = db.bounces, db.deliveries
    window_start = at - dt.timedelta(days=cfg.bounces.temporary_window_days)
    rows = conn.execute(sa.select(b.c.send_id, b.c.issue, b.c.digest, b.c.at).where(
        b.c.address == address, b.c.kind == "temporary")).all()
    bounced_sends = {r.send_id for r in rows if r.send_id is not None}
    success = conn.execute(sa.select(sa.func.max(sa.func.coalesce(d.c.sent_at, d.c.updated_at))).where(
        d.c.address == address, d.c.state == "sent", d.c.send_id.not_in(bounced_sends or {-1}))).scalar()
    since = max(window_start, _aware(success) or window_start)
    sends = {r.send_id if r.send_id is not None else (r.issue or r.digest) for r in rows if _aware(r.at) > since}
    count, threshold = len(sends), cfg.bounces.temporary_threshold
    if count < threshold:
        return RecordOutcome(address, kind, "counted", detail=f"{count} of {threshold} temporary bounces")
    if _is_key(conn, cfg, address):
        return RecordOutcome(address, kind, "key_protected",
                             detail=f"{count} temporary bounces, but a key customer is never suppressed for them",
                             alert=f"key customer {address} bounced temporarily on {count} sends")
    return _suppress(conn, address, "soft_bounce", digest, at, kind)


def _is_key(conn, cfg: Config, address: str) -> bool:
    """Key status from the latest delivery to the address, else the CRM roster."""
    d = db.deliveries
    latest = conn.execute(sa.select(d.c.key).where(d.c.address == address).order_by(d.c.id.desc()).limit(1)).first()
    if latest is not None and latest.key:
        return True
    return address in _roster(cfg.path(cfg.lists.key_customers), cfg.lists.header_map)


def _roster(path: Path, header_map: dict[str, str]) -> frozenset[str]:
    if not path.exists():
        return frozenset()
    return _roster_cached(str(path), path.stat().st_mtime_ns, tuple(sorted(header_map.items())))


@lru_cache(maxsize=4)
def _roster_cached(path: str, _mtime: int, header_map: tuple[tuple[str, str], ...]) -> frozenset[str]:
    """Canonical (and unrepaired) addresses of the CRM roster; an unreadable roster protects nobody by itself,
    which is why ``lists clean`` reports it loudly."""
    from ..lists.io import read_table
    from ..lists.normalize import resolve

    try:
        table = read_table(path, header_map=dict(header_map))
    except UserError:
        return frozenset()
    col = table.col("email")
    out = set()
    for _i, _line, fields in table.rows:
        normalized, canonical, *_ = resolve(fields[col])
        out.update(a for a in (normalized, canonical) if a)
    return frozenset(out)


def _domain_block(conn, cfg: Config, domain: str, send_id, at) -> str | None:
    """Hold ``domain`` when most of its recipients in this send failed with block codes; undo their suppressions."""
    h = db.domain_holds
    active = conn.execute(sa.select(h.c.reason).where(h.c.domain == domain, h.c.active.is_(True))).first()
    if active:
        return f"{domain} is on hold: {active.reason}"
    if send_id is None:
        return None
    d, b, s = db.deliveries, db.bounces, db.suppressions
    suffix = "%@" + domain
    recipients = conn.execute(sa.select(sa.func.count()).where(d.c.send_id == send_id, d.c.address.like(suffix))).scalar()
    failed = {r.address for r in conn.execute(sa.select(b.c.address, b.c.status, b.c.kind).where(
        b.c.send_id == send_id, b.c.address.like(suffix))) if is_block_code(r.status, r.kind)}
    if not recipients or len(failed) < MIN_DOMAIN_FAILURES or len(failed) / recipients <= cfg.bounces.domain_block_share:
        return None
    reason = f"{len(failed)} of {recipients} recipients failed with policy/connection codes in send {send_id}"
    if conn.execute(sa.select(h.c.id).where(h.c.domain == domain)).first():
        conn.execute(h.update().where(h.c.domain == domain).values(active=True, reason=reason, send_id=send_id, at=at))
    else:
        conn.execute(h.insert().values(domain=domain, reason=reason, send_id=send_id, at=at, active=True))
    # Earlier bounces of this send may have suppressed some of its addresses before the pattern was clear.
    evidence = sa.select(b.c.digest).where(b.c.send_id == send_id, b.c.address.like(suffix))
    conn.execute(s.update().where(s.c.address.like(suffix), s.c.source == "bounce", s.c.active.is_(True),
                                  s.c.evidence.in_(evidence)).values(
        active=False, undone_at=at, undo_reason=f"domain hold on {domain}: {reason}"))
    return f"{domain} held: {reason}"


def unsuppress(engine, address: str, reason: str) -> int:
    """Lift every active suppression of ``address`` (history kept: active=false, undo_reason); a leading ``@``
    releases a domain hold instead. Returns how many rows changed."""
    if not reason or not reason.strip():
        raise UserError("say why (--reason): the undo is kept in the history")
    with engine.begin() as conn:
        if address.startswith("@"):
            domain = canonicalize(address[1:])
            h = db.domain_holds
            n = conn.execute(h.update().where(h.c.domain == domain, h.c.active.is_(True)).values(
                active=False, reason=h.c.reason + " | released: " + reason)).rowcount
            if not n:
                raise UserError(f"no active hold on {domain}")
            return n
        address = canonicalize(address)
        s = db.suppressions
        n = conn.execute(s.update().where(s.c.address == address, s.c.active.is_(True)).values(
            active=False, undone_at=_now(), undo_reason=reason)).rowcount
    if not n:
        raise UserError(f"{address} is not suppressed in the database (suppressions.csv entries are edited there)")
    return n
