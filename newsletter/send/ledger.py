"""The send ledger: one ``sends`` row per send and one ``deliveries`` row per recipient, so a send survives a crash.

States of a delivery (docs/sending.md has the full rule):

    pending ──▶ sending ──▶ sent | failed | unknown
       ▲           │
       └───────────┘  (provider refused to take it for now: 429 / 5xx / connection refused)

``sending`` is written and committed at the last moment before a provider can accept the message
(after RCPT for SMTP, right before the POST for SendGrid, before the file for the outbox) and the
outcome right after the answer. A row still ``sending`` when a new run starts was in flight when the
previous process died; it becomes ``unknown`` (reported, never resent blindly) — except for the
outbox, where the file on disk tells exactly whether it was written.
"""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..db import deliveries, locks, sends, utcnow
from ..errors import UserError

CHUNK = 5000  # rows per INSERT / UPDATE statement: fast on both databases, under SQLite's variable limit


@dataclass
class Delivery:
    """One ledger row, as the message builder and the backends need it."""

    id: int
    address: str
    name: str
    company: str
    tier: str
    owner: str
    key: bool
    variant: str


@dataclass
class SendRow:
    id: int
    issue: str
    kind: str
    backend: str
    status: str
    scheduled_for: object
    batch_id: str | None
    note: str | None


_DELIVERY_COLS = (
    deliveries.c.id,
    deliveries.c.address,
    deliveries.c.name,
    deliveries.c.company,
    deliveries.c.tier,
    deliveries.c.owner,
    deliveries.c.key,
    deliveries.c.variant,
)


def _chunks(seq: Sequence, size: int = CHUNK) -> Iterable[Sequence]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def create_send(
    engine: Engine,
    *,
    issue: str,
    kind: str,
    backend: str,
    rows: Sequence[dict],
    scheduled_for=None,
    note: str | None = None,
) -> int:
    """Record a send and its audience snapshot in a single transaction; each row a dict with address,
    name, company, tier, owner, key, variant."""
    now = utcnow()
    with engine.begin() as conn:
        send_id = conn.execute(
            sends.insert().values(
                issue=issue, kind=kind, backend=backend, status="open", scheduled_for=scheduled_for,
                created_at=now, started_at=now, note=note,
            )
        ).inserted_primary_key[0]
        _insert_snapshot(conn, send_id, issue, now, rows)
        if conn.dialect.name == "postgresql" and len(rows) >= 1000:
            # fresh statistics, or the planner walks every pending row of the send for each batch
            conn.exec_driver_sql("ANALYZE deliveries")
    return send_id


_SNAPSHOT_COLS = ("send_id", "issue", "state", "attempts", "created_at", "updated_at",
                  "address", "name", "company", "tier", "owner", "key", "variant")


def _insert_snapshot(conn, send_id: int, issue: str, now, rows: Sequence[dict]) -> None:
    """executemany straight to the driver: 100,000 rows in about a second instead of tens.

    The values that are the same in every row go through their column type's bind processor once
    (SQLite stores datetimes as text); rows are grouped by variant, so each batch of one variant is
    a contiguous id range (cheap UPDATEs later)."""
    dialect = conn.dialect
    proc = {c: deliveries.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in _SNAPSHOT_COLS}
    head = tuple((proc[c] or (lambda v: v))(v)
                 for c, v in zip(_SNAPSHOT_COLS, (send_id, issue, "pending", 0, now, now)))
    as_key = proc["key"] or bool
    q = dialect.identifier_preparer
    columns = f"{q.format_table(deliveries)} ({', '.join(q.quote(c) for c in _SNAPSHOT_COLS)})"
    payload = [
        head + (r["address"], r["name"] or "", r["company"] or "", r["tier"] or "regular", r["owner"] or "",
                as_key(bool(r["key"])), r["variant"])
        for r in sorted(rows, key=lambda r: r["variant"])
    ]
    if dialect.name == "postgresql":  # COPY: several times faster than even a pipelined executemany
        with conn.connection.driver_connection.cursor() as cur, cur.copy(f"COPY {columns} FROM STDIN") as copy:
            for row in payload:
                copy.write_row(row)
        return
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {columns} VALUES ({', '.join([mark] * len(_SNAPSHOT_COLS))})"
    for chunk in _chunks(payload):
        conn.exec_driver_sql(sql, chunk)


def get_send(engine: Engine, send_id: int) -> SendRow:
    with engine.connect() as conn:
        r = conn.execute(sa.select(sends).where(sends.c.id == send_id)).one()
    return SendRow(r.id, r.issue, r.kind, r.backend, r.status, r.scheduled_for, r.batch_id, r.note)


def open_send(engine: Engine, issue: str, kind: str) -> SendRow | None:
    """The unfinished send of this kind for the issue, if a previous run left one."""
    with engine.connect() as conn:
        r = conn.execute(
            sa.select(sends)
            .where(sends.c.issue == issue, sends.c.kind == kind, sends.c.status == "open")
            .order_by(sends.c.id.desc())
            .limit(1)
        ).first()
    return None if r is None else SendRow(r.id, r.issue, r.kind, r.backend, r.status, r.scheduled_for, r.batch_id, r.note)


def sends_of(engine: Engine, issue: str, kind: str) -> list[int]:
    with engine.connect() as conn:
        return list(conn.scalars(sa.select(sends.c.id).where(sends.c.issue == issue, sends.c.kind == kind)))


def addresses_in(engine: Engine, issue: str, kinds: Sequence[str]) -> set[str]:
    """Every address with a delivery row for the issue in sends of these kinds (whatever its state)."""
    q = (
        sa.select(deliveries.c.address)
        .join(sends, sends.c.id == deliveries.c.send_id)
        .where(deliveries.c.issue == issue, sends.c.kind.in_(kinds), sends.c.status != "cancelled")
    )
    with engine.connect() as conn:
        return set(conn.scalars(q))


def set_send(engine: Engine, send_id: int, **values) -> None:
    with engine.begin() as conn:
        conn.execute(sends.update().where(sends.c.id == send_id).values(**values))


def cancel(engine: Engine, send_id: int, note: str) -> int:
    """A cancelled send: its rows say so, and its audience counts as never having had the issue.
    Returns how many rows were cancelled."""
    with engine.begin() as conn:
        conn.execute(sends.update().where(sends.c.id == send_id).values(status="cancelled", note=note,
                                                                        finished_at=utcnow()))
        return conn.execute(deliveries.update().where(deliveries.c.send_id == send_id)
                            .values(state="cancelled", updated_at=utcnow())).rowcount


def finish_send(engine: Engine, send_id: int) -> None:
    set_send(engine, send_id, status="done", finished_at=utcnow())


def pending_batch(engine: Engine, send_id: int, variant: str, after_id: int, limit: int) -> list[Delivery]:
    """The next pending rows of one variant, in id order, after a cursor (so rows left pending by a
    failed attempt are not retried in a loop within the same run)."""
    q = (
        sa.select(*_DELIVERY_COLS)
        .where(
            deliveries.c.send_id == send_id,
            deliveries.c.variant == variant,
            deliveries.c.state == "pending",
            deliveries.c.id > after_id,
        )
        .order_by(deliveries.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [Delivery(*r) for r in conn.execute(q)]


def variants_pending(engine: Engine, send_id: int) -> list[str]:
    q = (
        sa.select(deliveries.c.variant)
        .where(deliveries.c.send_id == send_id, deliveries.c.state == "pending")
        .group_by(deliveries.c.variant)
        .order_by(deliveries.c.variant)
    )
    with engine.connect() as conn:
        return list(conn.scalars(q))


def rows_in_state(engine: Engine, send_id: int, state: str) -> list[Delivery]:
    q = (
        sa.select(*_DELIVERY_COLS)
        .where(deliveries.c.send_id == send_id, deliveries.c.state == state)
        .order_by(deliveries.c.id)
    )
    with engine.connect() as conn:
        return [Delivery(*r) for r in conn.execute(q)]


def counts(engine: Engine, send_id: int) -> dict[str, int]:
    q = (
        sa.select(deliveries.c.state, sa.func.count())
        .where(deliveries.c.send_id == send_id)
        .group_by(deliveries.c.state)
    )
    with engine.connect() as conn:
        found = dict(conn.execute(q).all())
    return {s: int(found.get(s, 0)) for s in ("pending", "sending", "sent", "failed", "unknown")}


class Ledger:
    """State changes of one send's rows; every call commits, so a SIGKILL loses nothing already said."""

    def __init__(self, engine: Engine, send_id: int):
        self.engine = engine
        self.send_id = send_id
        self._conn = None

    @contextmanager
    def _tx(self):
        """One transaction on a connection kept for the whole send: no pool checkout and no reset
        round trip after each commit, which keeps the claim-to-send window short (docs/sending.md)."""
        if self._conn is None or self._conn.closed:
            self._conn = self.engine.connect()
        try:
            yield self._conn
            self._conn.commit()
        except BaseException:
            self._conn.rollback()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _update(self, ids: Sequence[int], where_state: str | None, **values) -> int:
        if not ids:
            return 0
        values.setdefault("updated_at", utcnow())
        done = 0
        with self._tx() as conn:
            for chunk in _chunks(sorted(ids)):
                lo, hi = chunk[0], chunk[-1]
                # a batch is usually a contiguous id range: BETWEEN is far cheaper than IN (1000 ids)
                match = deliveries.c.id.between(lo, hi) if hi - lo + 1 == len(chunk) else deliveries.c.id.in_(chunk)
                stmt = deliveries.update().where(deliveries.c.send_id == self.send_id, match)
                if where_state:
                    stmt = stmt.where(deliveries.c.state == where_state)
                done += conn.execute(stmt.values(**values)).rowcount
        return done

    def sending(self, ids: Sequence[int]) -> None:
        """Claim rows for an attempt; raises if another process took one meanwhile (never send twice)."""
        changed = self._update(ids, "pending", state="sending", attempts=deliveries.c.attempts + 1)
        if changed != len(ids):
            raise UserError(f"send {self.send_id}: {len(ids) - changed} rows were claimed by another process")

    def sent(self, ids: Sequence[int], provider_id: str | None = None) -> None:
        self._update(ids, "sending", state="sent", provider_id=provider_id, sent_at=utcnow(), error=None)

    def sent_each(self, pairs: Sequence[tuple[int, str | None]]) -> None:
        """Mark sent with one provider id per row (SMTP queue ids), in one transaction."""
        if not pairs:
            return
        now = utcnow()
        stmt = (
            deliveries.update()
            .where(deliveries.c.id == sa.bindparam("_id"), deliveries.c.state == "sending")
            .values(state="sent", provider_id=sa.bindparam("_pid"), sent_at=now, updated_at=now, error=None)
        )
        with self._tx() as conn:
            conn.execute(stmt, [{"_id": i, "_pid": p} for i, p in pairs])

    def failed(self, ids: Sequence[int], error: str, *, claimed: bool = True) -> None:
        extra = {} if claimed else {"attempts": deliveries.c.attempts + 1}
        self._update(ids, "sending" if claimed else "pending", state="failed", error=error[:2000], **extra)

    def unknown(self, ids: Sequence[int], error: str) -> None:
        self._update(ids, "sending", state="unknown", error=error[:2000])

    def release(self, ids: Sequence[int], error: str | None = None) -> None:
        """Back to pending: the provider did not take the message (429, 5xx, refused); a later run retries."""
        self._update(ids, "sending", state="pending", error=(error or "")[:2000] or None)

    def resolve_in_flight(self, exists=None) -> tuple[int, int]:
        """Rows a dead process left ``sending``: ``exists(delivery)`` says whether it went out (outbox);
        without it they become ``unknown``. Returns (resolved as sent, marked unknown)."""
        stuck = rows_in_state(self.engine, self.send_id, "sending")
        if not stuck:
            return 0, 0
        if exists is None:
            self.unknown([d.id for d in stuck], "in flight when the previous run stopped; outcome unknown")
            return 0, len(stuck)
        went = [d.id for d in stuck if exists(d)]
        self.sent(went)
        self.release([d.id for d in stuck if d.id not in set(went)], "in flight when the previous run stopped")
        return len(went), 0

    def retry_unknown(self) -> int:
        """The operator's decision: resend rows whose outcome was unknown (may duplicate)."""
        with self._tx() as conn:
            return conn.execute(
                deliveries.update()
                .where(deliveries.c.send_id == self.send_id, deliveries.c.state == "unknown")
                .values(state="pending", updated_at=utcnow())
            ).rowcount


# ---- one running send per issue ----------------------------------------------------------------------

def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(holder: str) -> bool:
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname():
        return True  # another machine: trust the expiry time
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def acquire(engine: Engine, name: str, ttl_seconds: int = 3600) -> None:
    """Take a named lock in the database; a lock whose process is dead (SIGKILL) or expired is taken over."""
    import datetime as dt

    now = utcnow()
    expires = now + dt.timedelta(seconds=ttl_seconds)
    me = _holder()
    with engine.begin() as conn:
        row = conn.execute(sa.select(locks).where(locks.c.name == name).with_for_update()).first()
        if row is not None:
            exp = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=dt.timezone.utc)
            if row.holder != me and exp > now and _alive(row.holder):
                raise UserError(f"another send is running ({name}, held by {row.holder} since {row.acquired_at:%H:%M:%S})")
            conn.execute(locks.delete().where(locks.c.name == name))
        try:
            conn.execute(locks.insert().values(name=name, holder=me, acquired_at=now, expires_at=expires))
        except sa.exc.IntegrityError:
            raise UserError(f"another send is running ({name})") from None


def release_lock(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        conn.execute(locks.delete().where(locks.c.name == name, locks.c.holder == _holder()))
