"""How long `newsletter report` takes on a big send: seeds N deliveries per issue over 3 issues with opens,
machine opens, clicks and visits, then times build_report (SQL aggregates) and the HTML rendering.

    python3 bench/bench_report.py                      # SQLite in a temp folder, 300k deliveries/issue
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test python3 bench/bench_report.py --schema
    python3 bench/bench_report.py --deliveries 50000

Prints the seeding time, the report time and the figures (so a run is checked, not only timed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from newsletter import db  # noqa: E402
from newsletter.config import Config  # noqa: E402
from newsletter.report import build_report, render_html  # noqa: E402

UTC = dt.timezone.utc
ISSUES = ("2026-09", "2026-10", "2026-11")
SLUGS = ("seongsu-roastery", "yuzu-honey-latte", "customer-story-bakery", "dawn-delivery", "cupping-invitation")
TIERS = ("key", "loyal", "regular", "prospect")
CHUNK = 20_000


def _event(**kw) -> dict:
    """A full events row (executemany needs the same keys in every row)."""
    return {"delivery_id": None, "issue": None, "address": None, "url": None, "rep": None, "machine": False, **kw}


def seed(url: str, per_issue: int) -> tuple[int, int]:
    engine = db.get_engine(url)
    rnd = random.Random(5)
    base = "https://webzine.gaonfoods.example"
    people = [(f"u{i}@example{i % 97}.co.kr", f"회사{i % (per_issue // 4 or 1)}", TIERS[i % 4], f"rep-{i % 12}", rnd.random())
              for i in range(per_issue)]
    n_events = 0
    did = 0
    with engine.begin() as conn:
        for send_id, issue in enumerate(ISSUES, start=1):
            start = dt.datetime(2026, 9 + send_id - 1, 1, 1, tzinfo=UTC)
            conn.execute(db.sends.insert().values(id=send_id, issue=issue, kind="real", backend="outbox",
                                                  status="done", started_at=start, created_at=start))
            deliveries, events = [], []
            for addr, company, tier, owner, reads in people:
                did += 1
                sent_at = start + dt.timedelta(seconds=did % 3600)
                deliveries.append({"id": did, "send_id": send_id, "issue": issue, "address": addr, "name": "",
                                   "company": company, "tier": tier, "owner": owner, "key": tier == "key",
                                   "variant": "key-loyal" if tier in ("key", "loyal") else "all",
                                   "state": "sent", "sent_at": sent_at, "created_at": start, "updated_at": start})
                if did % 3 == 0:
                    events.append(_event(**{"delivery_id": did, "issue": issue, "address": addr, "kind": "open",
                                   "at": sent_at + dt.timedelta(seconds=4), "machine": True}))
                if rnd.random() < reads * 0.6:
                    events.append(_event(**{"delivery_id": did, "issue": issue, "address": addr, "kind": "open",
                                   "at": sent_at + dt.timedelta(hours=rnd.uniform(0, 200)), "machine": False}))
                    if rnd.random() < 0.3:
                        events.append(_event(**{"delivery_id": did, "issue": issue, "address": addr, "kind": "click",
                                       "at": sent_at + dt.timedelta(hours=rnd.uniform(0, 200)), "machine": False,
                                       "url": f"{base}/{issue}/{rnd.choice(SLUGS)}/"}))
                if len(deliveries) >= CHUNK or len(events) >= CHUNK:  # deliveries first: events refer to them
                    conn.execute(db.deliveries.insert(), deliveries)
                    deliveries = []
                    conn.execute(db.events.insert(), events)
                    n_events += len(events)
                    events = []
            for _ in range(2000):
                events.append(_event(**{"issue": issue, "kind": "visit", "rep": f"rep-{rnd.randrange(12)}",
                               "url": f"/{issue}/{rnd.choice(SLUGS)}/", "machine": False,
                               "at": start + dt.timedelta(hours=rnd.uniform(0, 200))}))
            if deliveries:
                conn.execute(db.deliveries.insert(), deliveries)
            conn.execute(db.events.insert(), events)
            n_events += len(events)
    if engine.dialect.name == "postgresql":  # statistics, as autovacuum would have gathered by report time
        with engine.begin() as conn:
            conn.execute(sa.text("ANALYZE sends, deliveries, events, bounces"))
    return did, n_events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deliveries", type=int, default=300_000, help="deliveries per issue (3 issues)")
    ap.add_argument("--schema", action="store_true", help="PostgreSQL: use a throwaway schema")
    args = ap.parse_args()

    url = os.environ.get("DATABASE_URL")
    tmp = tempfile.TemporaryDirectory()
    schema = None
    if not url:
        url = f"sqlite:///{tmp.name}/bench.sqlite3"
    elif args.schema:
        schema = "bench_" + uuid.uuid4().hex[:8]
        admin = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = f"{url}?options=-csearch_path%3D{schema}"
    try:
        t0 = time.perf_counter()
        n_deliveries, n_events = seed(url, args.deliveries)
        t1 = time.perf_counter()
        cfg = Config()
        cfg.site.base_url = "https://webzine.gaonfoods.example"
        cfg.paths.content = tmp.name  # no content folder: article titles come from the clicked URLs
        report = build_report(cfg, ISSUES[-1], last=3, engine=db.get_engine(url))
        t2 = time.perf_counter()
        html = render_html(report, cfg)
        t3 = time.perf_counter()
        o = report.overall
        print(f"database          {db.get_engine(url).dialect.name}")
        print(f"seeded            {n_deliveries:,} deliveries, {n_events:,} events in {t1 - t0:.1f}s")
        print(f"report            {t2 - t1:.2f}s  (issue {report.issue}: {o.delivered:,} delivered, "
              f"{o.opened:,} opened, {o.machine_opens:,} machine opens, {o.clicks:,} clicks; "
              f"{sum(map(len, report.inactive_key_accounts.values())):,} inactive key accounts; "
              f"{len(report.companies):,} companies)")
        print(f"html              {t3 - t2:.2f}s  ({len(html) / 1e6:.1f} MB)")
    finally:
        if schema:
            db._engine_for.cache_clear()
            admin = sa.create_engine(os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"))
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        tmp.cleanup()


if __name__ == "__main__":
    main()
