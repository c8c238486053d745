"""Recording tracking events: opens, clicks, archive visits, unsubscribes and provider (webhook) events.

Everything here is synchronous SQLAlchemy Core and runs the same on SQLite and PostgreSQL. The web app
calls it from threads: opens, clicks and visits through :class:`HitWriter`, which queues them and
writes them in batches (one transaction per batch, so SQLite keeps up under load); unsubscribes and
webhook events directly, because the caller must know they are stored before it answers.

A database that is briefly busy (SQLite locked, PostgreSQL restarting) is retried with backoff
(:func:`retrying`); an event is never dropped because of it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import random
import re
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Iterable, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from .. import db

log = logging.getLogger("newsletter.track")
T = TypeVar("T")

HIT_KINDS = ("open", "click", "visit")

# --- machine-open and machine-click classification -------------------------------------------------

# Apple Mail Privacy Protection fetches every image through Apple's proxies soon after delivery, with
# the bare user agent "Mozilla/5.0", from Apple's 17.0.0.0/8.
APPLE_NETWORKS = (ipaddress.ip_network("17.0.0.0/8"),)
APPLE_MPP_UA = "Mozilla/5.0"

# Mail security gateways that fetch (images and links) on the recipient's behalf, by the outbound
# ranges their vendors publish in SPF: Microsoft Exchange Online Protection (spf.protection.outlook.com,
# where Defender for Office 365 runs) and Barracuda Email Security (spf.ess.barracudanetworks.com).
# Deliberately short: Safe Links detonation, Proofpoint and Mimecast also fetch from general cloud
# addresses that real readers share, so most scanners are caught by user agent, timing and bursts.
SCANNER_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "40.92.0.0/15", "40.107.0.0/16", "52.100.0.0/14", "104.47.0.0/17",  # Microsoft EOP / Defender
    "64.235.144.0/20", "209.222.80.0/21",  # Barracuda Email Security Service
))

# Image proxies and scanners that fetch on their own, not because a reader opened the mail or clicked;
# matched as lowercase substrings (a tuple of `in` tests is ~20x faster than one big case-insensitive regex).
# Gmail's GoogleImageProxy is *not* here: Gmail fetches through it when the reader opens the mail, so
# it is a human open unless it comes within the prefetch window after delivery. Naver Mail's and
# Daum/Kakao Mail's image proxies are not here either: no published user agent for them was found.
PREFETCH_UA = (
    "yahoomailproxy",  # Yahoo / AOL prefetch images on delivery
    "barracuda", "mimecast", "proofpoint", "urldefense", "symantec", "messagelabs", "ironport", "cisco",
    "trendmicro", "trend micro", "sophos", "forcepoint", "fireeye", "microsoft-office-scanner", "safelinks",
    "google-safety", "urlscan", "checkpoint", "fortiguard",  # mail security scanners (links and images)
    "crawler", "spider", "python-requests", "python-httpx", "curl/", "wget/", "go-http-client", "okhttp",
    "headlesschrome", "phantomjs",
)
BOT_WORD = re.compile(r"bot\b")  # a word ending in "bot" ("Googlebot/2.1", "MJ12bot"), not "Bottle" or "robotics"

# Opens and clicks this soon after the message left us are scanners and prefetchers, not readers.
PREFETCH_WINDOW = dt.timedelta(seconds=10)

# A delivery clicking this many distinct links within BURST_WINDOW is a scanner following every link
# (a reader opens one article, reads, comes back): see ClickBursts.
BURST_WINDOW = dt.timedelta(seconds=2)
BURST_LINKS = 3

# Link-preview fetchers: a rep pasting a link into KakaoTalk or Slack makes them fetch the page.
PREVIEW_BOT_UA = (
    "kakaotalk-scrap", "facebookexternalhit", "slackbot", "twitterbot", "telegrambot", "discordbot", "whatsapp",
    "linkedinbot", "googlebot", "bingbot", "yeti/", "daumoa", "applebot", "crawler", "spider", "preview",
    "curl/", "wget/", "python-",
)


def _machine_ua(ua: str, tokens: tuple[str, ...]) -> bool:
    lower = ua.lower()
    return any(t in lower for t in tokens) or BOT_WORD.search(lower) is not None


def _as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; everything in the database is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.timezone.utc)


@lru_cache(maxsize=65536)
def _network(ip: str) -> str | None:
    """"apple" or "scanner" when the address is in one of those networks, else None."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if addr.version == 6 and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    if any(addr in net for net in APPLE_NETWORKS):
        return "apple"
    if any(addr in net for net in SCANNER_NETWORKS):
        return "scanner"
    return None


def _classify_fetch(ua: str, ip: str, at: dt.datetime, sent_at: dt.datetime | None) -> str | None:
    """The signals opens and clicks share: scanner address, no or machine user agent, right after delivery."""
    if _network(ip) == "scanner":
        return "scanner-address"
    if not ua:
        return "no-user-agent"
    if _machine_ua(ua, PREFETCH_UA):
        return "prefetch-user-agent"
    sent_at = _as_utc(sent_at)
    if sent_at is not None and dt.timedelta(0) <= at - sent_at <= PREFETCH_WINDOW:
        return "right-after-delivery"
    return None


def classify_open(user_agent: str, ip: str, at: dt.datetime, sent_at: dt.datetime | None) -> str | None:
    """Why an open is a machine's (a short reason kept in ``events.detail``), or None for a human open."""
    ua = (user_agent or "").strip()
    if ua == APPLE_MPP_UA:
        return "apple-mpp-user-agent"
    if _network(ip) == "apple":
        return "apple-proxy-address"
    return _classify_fetch(ua, ip, at, sent_at)


def classify_click(user_agent: str, ip: str, at: dt.datetime, sent_at: dt.datetime | None) -> str | None:
    """Why a click is a link scanner's, or None for a person; bursts are found by :class:`ClickBursts`."""
    return _classify_fetch((user_agent or "").strip(), ip, at, sent_at)


def classify_visit(user_agent: str) -> str | None:
    """Why an archive visit is a link-preview robot's, or None for a person."""
    ua = (user_agent or "").strip()
    if not ua:
        return "no-user-agent"
    return "preview-bot" if _machine_ua(ua, PREVIEW_BOT_UA) else None


# --- retries ---------------------------------------------------------------------------------------


class DatabaseBusy(Exception):
    """The database stayed unavailable past the deadline; the caller answers 503 and the client retries."""


def _transient(exc: Exception) -> bool:
    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


BUSY_SECONDS = 20.0  # how long a request waits for a busy database before it answers 503


def retrying(fn: Callable[..., T], *args, deadline: float | None = None, forever: bool = False, **kwargs) -> T:
    """Call ``fn`` until it stops failing with a transient database error (locked, busy, reconnect).

    Backoff doubles from 20 ms to 1 s with jitter. Gives up with DatabaseBusy after ``deadline`` seconds
    (default BUSY_SECONDS), or never with ``forever`` (the batch writer: its events are still in memory,
    there is nobody to give them back to).
    """
    limit = None if forever else (BUSY_SECONDS if deadline is None else deadline)
    start = time.monotonic()
    delay = 0.02
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - re-raised unless transient
            if not _transient(exc):
                raise
            reason = str(getattr(exc, "orig", exc)).splitlines()[0]
            if limit is not None and time.monotonic() - start + delay > limit:
                raise DatabaseBusy(reason) from exc
            log.warning("database busy (%s); retrying in %.2fs", reason, delay)
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)


def insert_ignoring_duplicates(conn: Connection, table: sa.Table, rows: list[dict], key: str):
    """INSERT ... ON CONFLICT (key) DO NOTHING on SQLite and PostgreSQL; returns the keys inserted."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).on_conflict_do_nothing(index_elements=[key]).returning(table.c[key])
    inserted: list = []
    for row in rows:  # row by row: RETURNING of an executemany is not portable across both drivers
        inserted.extend(conn.execute(stmt, row).scalars())
    return inserted


# --- deliveries ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """What an event needs from a ledger row."""

    id: int
    send_id: int
    issue: str
    address: str
    sent_at: dt.datetime | None


def _delivery_rows(conn: Connection, ids: Iterable[int]) -> dict[int, Delivery]:
    d = db.deliveries.c
    ids = sorted(set(ids))
    found: dict[int, Delivery] = {}
    for i in range(0, len(ids), 500):
        query = sa.select(d.id, d.send_id, d.issue, d.address, d.sent_at).where(d.id.in_(ids[i:i + 500]))
        for row in conn.execute(query):
            found[row.id] = Delivery(row.id, row.send_id, row.issue, row.address, _as_utc(row.sent_at))
    return found


def find_delivery(engine: Engine, delivery_id: int) -> Delivery | None:
    with engine.connect() as conn:
        return _delivery_rows(conn, [delivery_id]).get(delivery_id)


class DeliveryCache:
    """Ledger rows already read, kept once they are sent (their issue, address and sent_at no longer change)."""

    def __init__(self, size: int = 100_000):
        self.size = size
        self._rows: OrderedDict[int, Delivery] = OrderedDict()

    def get_many(self, conn: Connection, ids: set[int]) -> dict[int, Delivery]:
        found = {i: self._rows[i] for i in ids if i in self._rows}
        missing = ids - found.keys()
        if missing:
            for delivery_id, row in _delivery_rows(conn, missing).items():
                found[delivery_id] = row
                if row.sent_at is not None:
                    self._rows[delivery_id] = row
            while len(self._rows) > self.size:
                self._rows.popitem(last=False)
        return found


# --- opens, clicks, visits -------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """One request to the tracking app worth an event: an open, a click or an archive visit."""

    kind: str  # open | click | visit
    at: dt.datetime
    ip: str
    user_agent: str
    delivery_id: int | None = None
    url: str | None = None
    rep: str | None = None
    issue: str | None = None


def open_hit(delivery_id: int, ip: str, user_agent: str, at: dt.datetime | None = None) -> Hit:
    return Hit("open", at or db.utcnow(), ip, user_agent, delivery_id=delivery_id)


def click_hit(delivery_id: int, url: str, ip: str, user_agent: str, at: dt.datetime | None = None) -> Hit:
    return Hit("click", at or db.utcnow(), ip, user_agent, delivery_id=delivery_id, url=url)


def visit_hit(path: str, rep: str, issue: str | None, ip: str, user_agent: str, at: dt.datetime | None = None) -> Hit:
    return Hit("visit", at or db.utcnow(), ip, user_agent, url=path, rep=rep, issue=issue)


class ClickBursts:
    """Recent clicks per delivery, kept by the one writer thread, to spot a scanner following every link.

    A click is part of a burst when its delivery clicked BURST_LINKS distinct links within BURST_WINDOW
    of it. The clicks before the one that revealed the burst may already be stored as human;
    :func:`record_hits` marks them machine in the same transaction (one UPDATE per delivery and batch,
    so a retried batch marks them again). Best effort: the window lives in this process's memory, so
    with ``--workers N`` a burst split across workers, or across a restart, is missed (user agent and
    timing still catch most scanners).
    """

    def __init__(self, size: int = 100_000):
        self.size = size
        self._recent: OrderedDict[int, list[tuple[dt.datetime, str]]] = OrderedDict()

    def add(self, delivery_id: int, at: dt.datetime, url: str) -> dt.datetime | None:
        """Note a click; when it is part of a burst, the time of the burst's first click, else None."""
        clicks = [(t, u) for t, u in self._recent.pop(delivery_id, []) if abs(at - t) <= BURST_WINDOW]
        clicks.append((at, url))
        self._recent[delivery_id] = clicks
        while len(self._recent) > self.size:
            self._recent.popitem(last=False)
        if len({u for _, u in clicks}) >= BURST_LINKS:
            return min(t for t, _ in clicks)
        return None


def _open_row(hit: Hit, delivery: Delivery) -> dict:
    reason = classify_open(hit.user_agent, hit.ip, hit.at, delivery.sent_at)
    return {"machine": reason is not None, "detail": reason}


def _click_row(hit: Hit, delivery: Delivery) -> dict:
    reason = classify_click(hit.user_agent, hit.ip, hit.at, delivery.sent_at)
    return {"machine": reason is not None, "detail": reason, "url": hit.url}


def _visit_row(hit: Hit, delivery: Delivery | None) -> dict:
    reason = classify_visit(hit.user_agent)
    return {"machine": reason is not None, "detail": reason, "url": hit.url, "rep": hit.rep, "issue": hit.issue}


_ROW = {"open": _open_row, "click": _click_row, "visit": _visit_row}


def _hit_rows(conn: Connection, hits: list[Hit], cache: DeliveryCache,
              bursts: ClickBursts) -> tuple[list[dict], dict[int, dt.datetime]]:
    """The event rows, and the bursts found: delivery id -> when its burst began (earlier clicks to mark)."""
    deliveries = cache.get_many(conn, {h.delivery_id for h in hits if h.delivery_id is not None})
    rows, began = [], {}
    for hit in hits:
        delivery = deliveries.get(hit.delivery_id) if hit.delivery_id is not None else None
        if hit.delivery_id is not None and delivery is None:
            log.warning("%s for unknown delivery %s ignored", hit.kind, hit.delivery_id)
            continue
        row = {
            "kind": hit.kind, "at": hit.at, "ip": hit.ip[:64], "user_agent": hit.user_agent[:1000],
            "delivery_id": hit.delivery_id, "machine": False, "url": None, "rep": None, "detail": None,
            "issue": delivery.issue if delivery else None, "address": delivery.address if delivery else None,
        }
        row.update(_ROW[hit.kind](hit, delivery))
        if hit.kind == "click":
            start = bursts.add(hit.delivery_id, hit.at, hit.url)
            if start is not None:
                if not row["machine"]:
                    row.update(machine=True, detail="click-burst")
                began[hit.delivery_id] = min(start, began.get(hit.delivery_id, start))
        rows.append(row)
    return rows, began


def _mark_bursts(conn: Connection, began: dict[int, dt.datetime]) -> None:
    """The clicks stored as human before their burst was recognised become machine clicks too."""
    e = db.events.c
    for delivery_id, start in began.items():
        conn.execute(db.events.update()
                     .where(e.delivery_id == delivery_id, e.kind == "click", e.at >= start, e.machine.is_(False))
                     .values(machine=True, detail="click-burst"))


def record_hits(bind: Engine | Connection, hits: list[Hit], cache: DeliveryCache | None = None,
                bursts: ClickBursts | None = None) -> int:
    """Write opens, clicks and visits in one transaction; returns how many rows were written.

    ``bind`` is an engine, or a connection kept open by a caller that writes often; ``bursts`` the
    caller's recent-clicks window (the batch writer keeps one for the life of the app). Hits naming a
    delivery that is not in the ledger (a valid token from a wiped database) are logged and skipped:
    there is no address to attribute them to.
    """
    if not hits:
        return 0
    cache = cache or DeliveryCache(0)
    with bind.begin() as tx:
        conn = tx if isinstance(bind, Engine) else bind
        rows, began = _hit_rows(conn, hits, cache, bursts or ClickBursts())
        if rows:
            _insert_events(conn, rows)
        _mark_bursts(conn, began)
    return len(rows)


HIT_COLUMNS = ("kind", "at", "ip", "user_agent", "delivery_id", "machine", "url", "rep", "detail", "issue", "address")


def _insert_events(conn: Connection, rows: list[dict]) -> None:
    """Many event rows at once: COPY on PostgreSQL (3x faster than a pipelined executemany), else executemany."""
    if conn.dialect.name != "postgresql":
        conn.execute(db.events.insert(), rows)
        return
    table = conn.dialect.identifier_preparer.format_table(db.events)
    with conn.connection.driver_connection.cursor() as cur:
        with cur.copy(f"COPY {table} ({', '.join(HIT_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in HIT_COLUMNS])


def record_open(engine: Engine, delivery_id: int, ip: str, user_agent: str, at: dt.datetime | None = None) -> int:
    return record_hits(engine, [open_hit(delivery_id, ip, user_agent, at)])


def record_click(engine: Engine, delivery_id: int, url: str, ip: str, user_agent: str) -> int:
    return record_hits(engine, [click_hit(delivery_id, url, ip, user_agent)])


def record_visit(engine: Engine, path: str, rep: str, issue: str | None, ip: str, user_agent: str) -> int:
    return record_hits(engine, [visit_hit(path, rep, issue, ip, user_agent)])


# --- suppressions and unsubscribes -----------------------------------------------------------------


def suppress(conn: Connection, address: str, reason: str, source: str, evidence: str | None = None,
             at: dt.datetime | None = None) -> bool:
    """Add an active suppression unless the address already has one for the same reason; True if added.

    The one place tracking writes to ``suppressions`` (list hygiene reads it before every send).
    """
    s = db.suppressions.c
    exists = conn.execute(
        sa.select(s.id).where(s.address == address, s.reason == reason, s.active.is_(True)).limit(1)
    ).first()
    if exists:
        return False
    conn.execute(db.suppressions.insert().values(
        address=address, reason=reason, source=source, evidence=evidence, at=at or db.utcnow(), active=True))
    return True


@dataclass(frozen=True)
class Unsubscribed:
    address: str
    issue: str
    new: bool  # False when the address was already unsubscribed


def record_unsubscribe(engine: Engine, delivery_id: int, ip: str = "", user_agent: str = "",
                       source: str = "tracking") -> Unsubscribed | None:
    """Suppress the delivery's address at once and log an 'unsubscribe' event; idempotent.

    None when the delivery is not in the ledger.
    """
    with engine.begin() as conn:
        delivery = _delivery_rows(conn, [delivery_id]).get(delivery_id)
        if delivery is None:
            return None
        now = db.utcnow()
        new = suppress(conn, delivery.address, "unsubscribed", source, evidence=f"delivery {delivery_id}", at=now)
        if new:
            conn.execute(db.events.insert().values(
                delivery_id=delivery_id, issue=delivery.issue, address=delivery.address, kind="unsubscribe",
                at=now, ip=ip[:64], user_agent=user_agent[:1000], detail=source))
    return Unsubscribed(delivery.address, delivery.issue, new)


# --- the batch writer ------------------------------------------------------------------------------


@dataclass
class WriterStats:
    queued: int = 0
    written: int = 0
    skipped: int = 0
    batches: int = 0


@dataclass
class HitWriter:
    """Writes opens, clicks and visits in batches, one transaction each, on one database thread.

    ``await writer.record(hit)`` only queues the hit, so a pixel or a redirect is answered without
    waiting for the database (waiting bought nothing: a mail client never retries a pixel, and a crash
    loses the requests in flight either way). Whatever queued while a batch was being written goes
    into the next one, so under load batches grow and the database keeps up. A busy database is
    retried for as long as it takes; ``close()`` writes everything still queued before the app stops.
    """

    engine: Engine
    max_batch: int = 500  # bounds how long one transaction holds the database (and the GIL)
    max_queue: int = 100_000  # then record() waits: back-pressure rather than unbounded memory
    stats: WriterStats = field(default_factory=WriterStats)

    def __post_init__(self):
        self._queue: asyncio.Queue[Hit | None] = asyncio.Queue(maxsize=self.max_queue)
        self._cache = DeliveryCache()
        self._bursts = ClickBursts()
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._conn: Connection | None = None  # the writer thread's own connection, kept between batches

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hit-writer")
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def record(self, hit: Hit) -> None:
        await self._queue.put(hit)
        self.stats.queued += 1

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            batch: list[Hit] = []
            item = await self._queue.get()
            while True:
                if item is None:
                    stopping = True  # close() queued this last; keep draining what came before it
                else:
                    batch.append(item)
                if len(batch) >= self.max_batch or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            if batch:
                await loop.run_in_executor(self._executor, self._write, batch)

    def _commit(self, hits: list[Hit]) -> int:
        if self._conn is None:
            self._conn = self.engine.connect()
        try:
            return record_hits(self._conn, hits, self._cache, self._bursts)
        except Exception:
            self._disconnect()  # a fresh connection for the retry: this one may be broken
            raise

    def _disconnect(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail too
                pass
            self._conn = None

    def _write(self, hits: list[Hit]) -> None:
        """One transaction for the batch; on a non-transient error, row by row so one bad hit loses only itself."""
        try:
            written = retrying(self._commit, hits, forever=True)
        except Exception:  # noqa: BLE001 - isolate the bad row below
            log.exception("batch of %d hits failed; writing them one by one", len(hits))
            written = 0
            for hit in hits:
                try:
                    written += retrying(self._commit, [hit], forever=True)
                except Exception:  # noqa: BLE001
                    log.exception("hit not recorded: %r", hit)
        self.stats.batches += 1
        self.stats.written += written
        self.stats.skipped += len(hits) - written

    async def close(self) -> None:
        """Write everything still queued, then stop the writer thread."""
        if self._task is None:
            return
        await self._queue.put(None)
        await self._task
        self._task = None
        await asyncio.get_running_loop().run_in_executor(self._executor, self._disconnect)
        self._executor.shutdown(wait=True)
