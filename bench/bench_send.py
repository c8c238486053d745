"""Benchmark the send stage; run by hand, prints its figures.

    python bench/bench_send.py                      # SendGrid 100k, SMTP c=1 and c=8, ledger on SQLite
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test python bench/bench_send.py --only ledger

1. SendGrid: 100,000 recipients through the real backend (ledger snapshot, link rewriting, tokens,
   bodies of 1,000 personalizations, the real ``sendgrid`` client) into the local server in
   tests/_sendgrid_server.py, running in its own process. Goal: >= 20,000 recipients/s, <= 100 requests.
   The server validates a sample of the bodies against the schema right after answering (a body
   costs it ~0.3 s to validate — the fake server's cost, not the sender's); --validate-every 1 checks
   them all (the tests validate every body before answering).
2. SMTP into aiosmtpd (own process) at concurrency 1 and 8: messages/s. aiosmtpd itself tops out
   near a few hundred messages/s, so this measures the pair, not the sender alone.
3. Ledger overhead per recipient: snapshot insert, batch claim + mark sent (SendGrid/outbox style),
   and the two per-message commits of the SMTP path — on SQLite, and on PostgreSQL when DATABASE_URL says so.

Hygiene (list cleaning) is not part of these figures: the audience is given.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("NEWSLETTER_SECRET", "bench-secret")

from _send_helpers import audience, write_build, write_config  # noqa: E402

from newsletter.config import load_config  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server(script: str, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / script), *args], stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()  # ready
    return proc


def stop(proc: subprocess.Popen) -> dict:
    proc.terminate()
    out = proc.stdout.read().strip().splitlines()
    proc.wait()
    return json.loads(out[-1]) if out else {}


def fresh_db(tmp: Path, name: str) -> str:
    """A new SQLite file, or a fresh schema in the PostgreSQL of DATABASE_URL."""
    pg = os.environ.get("BENCH_PG_URL")
    if pg:
        import uuid

        import sqlalchemy as sa

        schema = "bench_" + uuid.uuid4().hex[:8]
        admin = sa.create_engine(pg.replace("postgresql://", "postgresql+psycopg://"))
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        url = pg.replace("postgresql://", "postgresql+psycopg://") + f"?options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{tmp / (name + '.sqlite3')}"
    os.environ["DATABASE_URL"] = url
    return url


def project(tmp: Path, **send):
    write_build(tmp)
    return load_config(write_config(tmp, **send))


def run_send(cfg, people, backend: str):
    from newsletter.send import execute, plan_send

    start, cpu = time.perf_counter(), time.process_time()
    plan = plan_send(cfg, "2026-11", audience=people, attention=[], progress=False)
    result = execute(cfg, plan, backend=backend, progress=False)
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"          (sender CPU {cpu:.2f} s = {len(people) / cpu:,.0f} recipients per CPU-second; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    return took, result


def bench_sendgrid(n: int, validate_every: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        fresh_db(tmp, "sendgrid")
        port = free_port()
        srv = server("_sendgrid_server.py", str(port), str(validate_every))
        os.environ["SENDGRID_API_KEY"] = "SG.test-key"
        os.environ["SENDGRID_API_HOST"] = f"http://127.0.0.1:{port}"
        cfg = project(tmp, backend="sendgrid")
        people = audience(n)
        took, result = run_send(cfg, people, "sendgrid")
        seen = stop(srv)
    print(f"SendGrid  {n:>7,} recipients  {took:6.2f} s  {n / took:>9,.0f} recipients/s  "
          f"{seen.get('requests')} requests  server accepted {seen.get('recipients'):,} "
          f"({seen.get('distinct'):,} distinct, {seen.get('invalid')} invalid bodies; 1 in {validate_every} validated)  "
          f"ledger sent {result.counts['sent']:,}")


def bench_smtp(n: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        fresh_db(tmp, f"smtp{concurrency}")
        port = free_port()
        srv = server("_smtp_server.py", str(port))
        cfg = project(tmp, backend="smtp", concurrency=concurrency, rate_per_second=0,
                      smtp={"host": "127.0.0.1", "port": port})
        took, result = run_send(cfg, audience(n), "smtp")
        seen = stop(srv)
    print(f"SMTP c={concurrency:<2} {n:>7,} messages    {took:6.2f} s  {n / took:>9,.0f} messages/s  "
          f"server received {seen.get('messages'):,}  ledger sent {result.counts['sent']:,}")


def bench_ledger(n: int) -> None:
    from newsletter.db import get_engine
    from newsletter.send import ledger as L

    with tempfile.TemporaryDirectory() as d:
        url = fresh_db(Path(d), "ledger")
        engine = get_engine(url)
        rows = [{"address": f"user{i:06d}@example.com", "name": f"고객{i}", "company": "회사", "tier": "regular",
                 "owner": "", "key": False, "variant": "all"} for i in range(n)]
        t = time.perf_counter()
        send_id = L.create_send(engine, issue="2026-11", kind="real", backend="bench", rows=rows)
        t_insert = time.perf_counter() - t
        led = L.Ledger(engine, send_id)
        t = time.perf_counter()
        cursor = 0
        while batch := L.pending_batch(engine, send_id, "all", cursor, 1000):
            ids = [b.id for b in batch]
            led.sending(ids)
            led.sent(ids, provider_id="x")
            cursor = ids[-1]
        t_batch = time.perf_counter() - t
        m = min(n, 3000)
        single = L.create_send(engine, issue="2026-12", kind="real", backend="bench", rows=rows[:m])
        led = L.Ledger(engine, single)
        ids = [b.id for b in L.pending_batch(engine, single, "all", 0, m)]
        t = time.perf_counter()
        for i in ids:
            led.sending([i])
            led.sent_each([(i, "250 ok")])
        t_single = time.perf_counter() - t
        kind = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
        engine.dispose()
    us = 1e6
    print(f"ledger {kind:<10} snapshot {t_insert / n * us:6.1f} µs/recipient ({n:,} rows in {t_insert:.2f} s)  "
          f"batch claim+sent {t_batch / n * us:6.1f} µs/recipient  "
          f"per-message claim+sent (SMTP) {t_single / m * us:7.1f} µs/recipient")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=("sendgrid", "smtp", "ledger"))
    ap.add_argument("--recipients", type=int, default=100_000)
    ap.add_argument("--smtp-messages", type=int, default=5_000)
    ap.add_argument("--validate-every", type=int, default=20)
    args = ap.parse_args()
    pg = os.environ.get("DATABASE_URL", "")
    if pg.startswith("postgresql"):
        os.environ["BENCH_PG_URL"] = pg.split("?")[0]
    if args.only in (None, "sendgrid"):
        bench_sendgrid(args.recipients, args.validate_every)
    if args.only in (None, "smtp"):
        for c in (1, 8):
            bench_smtp(args.smtp_messages, c)
    if args.only in (None, "ledger"):
        bench_ledger(args.recipients)


if __name__ == "__main__":
    main()
