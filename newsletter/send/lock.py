"""A named lock in the database, so two ``send-due`` runs (cron, a timer, a person) never send at once.

Why the database and not a lock file: the database is the one thing every runner shares, also across
machines when it is PostgreSQL. Acquiring is one INSERT that fails on the primary key while someone
holds the lock, or one UPDATE that takes over a row whose time ran out (a holder killed with SIGKILL).
Both statements are atomic on SQLite and PostgreSQL, so exactly one contender wins. The holder renews
the lease from a background thread while it works and deletes the row when done (in ``finally``).

Times come from this machine's clock, in UTC; machines sharing one PostgreSQL need synchronised clocks
(NTP), which a lease of minutes tolerates easily.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ..db import locks, utcnow

log = logging.getLogger(__name__)

DEFAULT_TTL = 600.0  # seconds; renewed every third of it, so only a process stalled this long loses the lock


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; everything this package stores is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def default_holder() -> str:
    """Who holds the lock, readable in the table: host, process id and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LockBusy(Exception):
    """Someone else holds the lock; not an error for ``send-due`` (the other run does the work)."""

    def __init__(self, name: str, holder: str | None, expires_at: dt.datetime | None):
        self.name, self.holder, self.expires_at = name, holder, expires_at
        until = f" until {expires_at:%Y-%m-%d %H:%M:%S} UTC" if expires_at else ""
        super().__init__(f"lock {name!r} is held by {holder or 'another process'}{until}")


@dataclass
class Lock:
    engine: Engine
    name: str
    ttl: float = DEFAULT_TTL
    holder: str = field(default_factory=default_holder)
    lost: bool = False  # set when a renewal found the row taken over (we stalled longer than the TTL)

    def _expiry(self, now: dt.datetime) -> dt.datetime:
        return now + dt.timedelta(seconds=self.ttl)

    def acquire(self) -> bool:
        """True when this process now holds the lock."""
        now = utcnow()
        values = dict(holder=self.holder, acquired_at=now, expires_at=self._expiry(now))
        try:
            with self.engine.begin() as conn:
                conn.execute(locks.insert().values(name=self.name, **values))
            return True
        except IntegrityError:
            pass  # held, or left behind by a dead holder: take it over only if its time ran out
        with self.engine.begin() as conn:
            taken = conn.execute(
                locks.update().where(locks.c.name == self.name, locks.c.expires_at < now).values(**values)
            )
        return taken.rowcount == 1

    def renew(self) -> bool:
        """Push the expiry forward; False (and ``lost``) when the row is no longer ours."""
        with self.engine.begin() as conn:
            res = conn.execute(
                locks.update()
                .where(locks.c.name == self.name, locks.c.holder == self.holder)
                .values(expires_at=self._expiry(utcnow()))
            )
        if res.rowcount != 1:
            self.lost = True
        return not self.lost

    def release(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(locks.delete().where(locks.c.name == self.name, locks.c.holder == self.holder))

    def current(self) -> tuple[str | None, dt.datetime | None]:
        """The holder and expiry as the table has them now (for the 'busy' message)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(locks.c.holder, locks.c.expires_at).where(locks.c.name == self.name)).first()
        return (row.holder, as_utc(row.expires_at)) if row else (None, None)


def _renew_loop(lock: Lock, stop: threading.Event) -> None:
    while not stop.wait(lock.ttl / 3):
        try:
            if not lock.renew():
                log.warning("lock %r was taken over by another process", lock.name)
                return
        except Exception:  # a database hiccup: try again next round, the lease still has two thirds left
            log.warning("could not renew lock %r", lock.name, exc_info=True)


@contextmanager
def held(engine: Engine, name: str, *, ttl: float = DEFAULT_TTL, holder: str | None = None) -> Iterator[Lock]:
    """Hold ``name`` for the duration of the block, renewing it; raise ``LockBusy`` if someone else has it."""
    lock = Lock(engine, name, ttl, holder or default_holder())
    if not lock.acquire():
        raise LockBusy(name, *lock.current())
    stop = threading.Event()
    renewer = threading.Thread(target=_renew_loop, args=(lock, stop), name=f"lock-{name}", daemon=True)
    renewer.start()
    try:
        yield lock
    finally:
        stop.set()
        renewer.join()
        lock.release()
