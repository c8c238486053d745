"""`newsletter serve` as a user runs it: a real process, stopped with SIGTERM, every event kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from _track_helpers import add_deliveries, count_events, free_port
from newsletter import db
from newsletter.config import load_config
from newsletter.track.tokens import Signer


def start(project, db_url, *args):
    env = dict(os.environ, DATABASE_URL=db_url)
    return subprocess.Popen([sys.executable, "-m", "newsletter", "serve", "--config", str(project / "config.yaml"), *args],
                            cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_healthy(base: str, proc) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("newsletter serve did not come up")


def test_serve_records_events_and_keeps_them_all_on_sigterm(db_url, project):
    cfg = load_config(project / "config.yaml")
    ids = add_deliveries(db.get_engine(db_url), ["kim@example.com", "lee@example.co.kr"])
    signer = Signer.for_config(cfg)
    port = free_port()
    proc = start(project, db_url, "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        with httpx.Client(base_url=base) as http:
            for i in range(60):
                assert http.get(f"/o/{signer.recipient('o', ids[i % 2])}.gif").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode in (0, -signal.SIGTERM), err  # uvicorn re-raises the signal after a clean shutdown
    assert "Application shutdown complete" in err
    assert "tracking stopped: 60 hits written" in err
    assert "Traceback" not in err
    assert count_events(db.get_engine(db_url), "open") == 60


def test_serve_with_a_bad_webhook_key_says_so_in_one_line(sqlite_url, project):
    proc = subprocess.run([sys.executable, "-m", "newsletter", "serve", "--config", str(project / "config.yaml"),
                           "--port", str(free_port())], cwd=project, capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, DATABASE_URL=sqlite_url, SENDGRID_WEBHOOK_PUBLIC_KEY="nonsense"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: SENDGRID_WEBHOOK_PUBLIC_KEY:") and proc.stderr.count("\n") == 1
