"""Open-pixel throughput of `newsletter serve` (uvicorn, 1 worker, pinned to one core) over loopback.

    python3 bench/bench_track.py                 # SQLite, then PostgreSQL (127.0.0.1:5432/test)
    python3 bench/bench_track.py --db sqlite --duration 20 --connections 64
    python3 bench/bench_track.py --client python # without wrk

Runs the real command against a throw-away project (SQLite file in a temp folder, or a throw-away
PostgreSQL schema), loads it with wrk (Debian package; a small asyncio client otherwise) rotating over
1,000 recipients' pixel tokens, stops the server with SIGTERM (it flushes its queue) and counts the
open events in the database: every completed request must have its event. Goal: >= 3,000 req/s.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from newsletter import db  # noqa: E402
from newsletter.config import load_config  # noqa: E402
from newsletter.track.tokens import Signer  # noqa: E402

RECIPIENTS = 1000
PG_DEFAULT = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(url: str, cfg) -> list[str]:
    """A finished send with RECIPIENTS delivered rows; their pixel paths."""
    engine = db.get_engine(url)
    sent_at = db.utcnow() - dt.timedelta(hours=1)
    with engine.begin() as conn:
        send_id = conn.execute(db.sends.insert().values(issue="2026-11", backend="outbox", status="done")).inserted_primary_key[0]
        conn.execute(db.deliveries.insert(), [
            {"send_id": send_id, "issue": "2026-11", "address": f"reader{i}@example.com", "state": "sent", "sent_at": sent_at}
            for i in range(RECIPIENTS)])
        ids = [r.id for r in conn.execute(sa.select(db.deliveries.c.id).where(db.deliveries.c.send_id == send_id))]
    signer = Signer.for_config(cfg)
    return [f"/o/{signer.recipient('o', i)}.gif" for i in ids]


def count_opens(url: str) -> int:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(db.events).where(db.events.c.kind == "open")).scalar()
    engine.dispose()
    return n


def cores() -> tuple[str, str]:
    """Server on the first CPU we may use; the load generator on the others (or the same one)."""
    cpus = sorted(os.sched_getaffinity(0))
    server = str(cpus[0])
    client = ",".join(str(c) for c in cpus[1:]) or server
    return server, client


def start_server(project: Path, url: str, port: int, server_cpu: str) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=url, NEWSLETTER_CONFIG=str(project / "config.yaml"))
    cmd = [sys.executable, "-m", "newsletter", "serve", "--port", str(port), "--workers", "1"]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", server_cpu, *cmd]
    proc = subprocess.Popen(cmd, env=env, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"server failed to start:\n{proc.stderr.read().decode()}")
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start within 20 s")


WRK_SCRIPT = """
paths = {%s}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1], {["User-Agent"] = "%s"})
end
"""


def run_wrk(port: int, paths: list[str], seconds: int, connections: int, client_cpu: str, workdir: Path) -> dict:
    script = workdir / "pixel.lua"
    script.write_text(WRK_SCRIPT % (",".join(f'"{p}"' for p in paths), UA))
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), f"http://127.0.0.1:{port}/"]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", client_cpu, *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    completed = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    p99 = re.search(r"99%\s+(\S+)", out)
    return {"completed": completed, "failed": int(bad.group(1)) if bad else 0, "rps": completed / seconds,
            "errors": errors.group(1) if errors else "none", "p99": p99.group(1) if p99 else "?"}


async def _python_load(port: int, paths: list[str], seconds: int, connections: int) -> dict:
    """Keep-alive HTTP/1.1 GETs on `connections` sockets for `seconds`; counts 200 responses."""
    stop = time.monotonic() + seconds
    done = failed = 0

    async def worker(offset: int):
        nonlocal done, failed
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = offset
        while time.monotonic() < stop:
            path = paths[i % len(paths)]
            i += connections
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {UA}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
            await reader.readexactly(length)
            if head.startswith(b"HTTP/1.1 200"):
                done += 1
            else:
                failed += 1
        writer.close()

    await asyncio.gather(*(worker(i) for i in range(connections)))
    return {"completed": done, "failed": failed, "rps": done / seconds, "errors": "none", "p99": "?"}


def bench(name: str, url: str, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-track-") as tmp:
        project = Path(tmp)
        (project / "config.yaml").write_text("tracking:\n  base_url: http://127.0.0.1\n", encoding="utf-8")
        os.environ.setdefault("NEWSLETTER_SECRET", "bench-secret")
        cfg = load_config(project / "config.yaml")
        paths = seed(url, cfg)
        server_cpu, client_cpu = cores()
        port = free_port()
        proc = start_server(project, url, port, server_cpu)
        try:
            if args.client == "wrk":
                run_wrk(port, paths, 2, args.connections, client_cpu, project)  # warm-up
            else:
                asyncio.run(_python_load(port, paths, 2, args.connections))
            time.sleep(0.5)  # let the warm-up's last requests commit
            warm = count_opens(url)
            if args.client == "wrk":
                load = run_wrk(port, paths, args.duration, args.connections, client_cpu, project)
            else:
                load = asyncio.run(_python_load(port, paths, args.duration, args.connections))
        finally:
            proc.send_signal(signal.SIGTERM)  # graceful: in-flight requests finish, the queue is flushed
            proc.wait(60)
        counted = count_opens(url) - warm
        load.update(name=name, counted=counted, in_flight=counted - load["completed"],
                    ok=load["completed"] <= counted <= load["completed"] + args.connections and load["failed"] == 0)
        return load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load (after a 2 s warm-up)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--client", choices=["wrk", "python"], default="wrk" if shutil.which("wrk") else "python")
    parser.add_argument("--pg-url", default=PG_DEFAULT, help="PostgreSQL to use (a throw-away schema is made in it)")
    args = parser.parse_args()

    results = []
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="bench-track-db-") as tmp:
            results.append(bench("SQLite", f"sqlite:///{tmp}/bench.sqlite3", args))
    if args.db in ("postgresql", "both"):
        schema = "bench_" + uuid.uuid4().hex[:10]
        admin = sa.create_engine(args.pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in args.pg_url else "?"
        try:
            results.append(bench("PostgreSQL", f"{args.pg_url}{sep}options=-csearch_path%3D{schema}", args))
        finally:
            db._engine_for.cache_clear()
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

    server_cpu, client_cpu = cores()
    print(f"\nopen pixel, `newsletter serve` 1 worker on CPU {server_cpu}, {args.client} on CPU {client_cpu}, "
          f"{args.connections} connections, {args.duration} s")
    print(f"{'database':<12}{'req/s':>10}{'p99':>10}{'requests':>10}{'events':>10}{'in flight':>10}  all counted")
    for r in results:
        print(f"{r['name']:<12}{r['rps']:>10,.0f}{r['p99']:>10}{r['completed']:>10,}{r['counted']:>10,}"
              f"{r['in_flight']:>10}  {'yes' if r['ok'] else 'NO'}")
        if r["errors"] != "none":
            print(f"  socket errors: {r['errors']}")
    sys.exit(0 if all(r["ok"] for r in results) else 1)


if __name__ == "__main__":
    main()
