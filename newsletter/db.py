"""The one database of the pipeline (SQLAlchemy Core): the send ledger, events, suppressions, bounces.

SQLite file under ``state/`` by default; PostgreSQL when ``DATABASE_URL`` says so. One schema for both.
All timestamps are stored in UTC.
"""

from __future__ import annotations

import datetime as dt
import os
from functools import lru_cache

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine

metadata = MetaData()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


sends = Table(
    "sends",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("issue", String(64), nullable=False),
    Column("kind", String(16), nullable=False, default="real"),  # real | test | resend
    Column("backend", String(16), nullable=False),
    Column("status", String(16), nullable=False, default="open"),  # open | done | cancelled
    Column("scheduled_for", DateTime(timezone=True)),
    Column("batch_id", String(128)),  # SendGrid batch id, so a scheduled send can be cancelled
    Column("created_at", DateTime(timezone=True), nullable=False, default=utcnow),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("note", Text),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("send_id", Integer, ForeignKey("sends.id"), nullable=False),
    Column("issue", String(64), nullable=False),
    Column("address", String(320), nullable=False),
    Column("name", String(200), nullable=False, default=""),
    Column("company", String(200), nullable=False, default=""),
    Column("tier", String(16), nullable=False, default="regular"),
    Column("owner", String(100), nullable=False, default=""),
    Column("key", Boolean, nullable=False, default=False),
    Column("variant", String(64), nullable=False, default="all"),
    Column("state", String(16), nullable=False, default="pending"),  # pending | sending | sent | failed | unknown (docs/sending.md)
    Column("attempts", Integer, nullable=False, default=0),
    Column("provider_id", String(200)),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, default=utcnow),
    Column("updated_at", DateTime(timezone=True), nullable=False, default=utcnow),
    Column("sent_at", DateTime(timezone=True)),
    UniqueConstraint("send_id", "address", name="uq_delivery_send_address"),
    Index("ix_deliveries_issue_address", "issue", "address"),
    Index("ix_deliveries_send_state", "send_id", "state"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("delivery_id", Integer, ForeignKey("deliveries.id")),
    Column("issue", String(64)),
    Column("address", String(320)),
    # delivered | open | click | unsubscribe | complaint | bounce | dropped | deferred | visit
    Column("kind", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, default=utcnow),
    Column("machine", Boolean, nullable=False, default=False),
    Column("url", Text),
    Column("rep", String(100)),
    Column("ip", String(64)),
    Column("user_agent", Text),
    Column("provider_event_id", String(200), unique=True),
    Column("detail", Text),
    Index("ix_events_issue_kind", "issue", "kind"),
    Index("ix_events_delivery", "delivery_id"),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("address", String(320), nullable=False),
    Column("reason", String(32), nullable=False),  # unsubscribed | hard_bounce | complaint | soft_bounce
    Column("at", DateTime(timezone=True), nullable=False, default=utcnow),
    Column("source", String(64), nullable=False, default=""),  # tracking | webhook | bounce | smtp | import
    Column("evidence", Text),  # bounce digest, event id, ...
    Column("active", Boolean, nullable=False, default=True),
    Column("undone_at", DateTime(timezone=True)),
    Column("undo_reason", Text),
    Index("ix_suppressions_address", "address"),
)

bounces = Table(
    "bounces",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("address", String(320)),
    Column("kind", String(16), nullable=False),  # permanent | temporary | complaint | not_a_bounce
    Column("status", String(16)),
    Column("diagnostic", Text),
    Column("send_id", Integer),
    Column("issue", String(64)),
    Column("digest", String(64), nullable=False),  # sha256 of the raw message: ingest is idempotent on it
    Column("path", Text),
    Column("raw", Text),
    Column("at", DateTime(timezone=True), nullable=False, default=utcnow),
    UniqueConstraint("digest", "address", name="uq_bounce_digest_address"),
    Index("ix_bounces_address", "address"),
)

locks = Table(
    "locks",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

domain_holds = Table(
    "domain_holds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("domain", String(255), nullable=False, unique=True),
    Column("reason", Text, nullable=False),
    Column("send_id", Integer),
    Column("at", DateTime(timezone=True), nullable=False, default=utcnow),
    Column("active", Boolean, nullable=False, default=True),
)


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=15000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


@lru_cache(maxsize=16)
def _engine_for(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 15})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    metadata.create_all(engine)
    return engine


def get_engine(url_or_config) -> Engine:
    """An engine for a URL or a Config (DATABASE_URL or the SQLite default), with the schema created."""
    url = url_or_config if isinstance(url_or_config, str) else url_or_config.database_url
    return _engine_for(url)
