"""send-due: the database lock, due-ness, quiet-hours refusal, and two runs at once sending exactly once.

Every test runs on SQLite and PostgreSQL (``db_url``); the end-to-end tests go through the real sender
(``newsletter.send.runner``) into the outbox backend and count the .eml files and ledger rows.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from _schedule_helpers import EXAMPLE_ISSUE, cli, seoul, write_project
from _send_helpers import audience, write_build, write_config, write_subscribers
from newsletter.config import load_config
from newsletter.db import deliveries, get_engine, locks, sends
from newsletter.send import lock as L
from newsletter.send import schedule as S

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------ the lock


def test_lock_is_exclusive_and_released(db_url):
    engine = get_engine(db_url)
    first, second = L.Lock(engine, "job"), L.Lock(engine, "job")
    assert first.acquire()
    assert not second.acquire()
    assert second.current()[0] == first.holder
    second.release()  # not the holder: changes nothing
    assert not second.acquire()
    first.release()
    assert second.acquire()


def test_an_expired_lock_is_taken_over_and_the_old_holder_knows(db_url):
    engine = get_engine(db_url)
    dead = L.Lock(engine, "job", ttl=0.2)  # a holder killed with SIGKILL: it never renews nor releases
    assert dead.acquire()
    assert not L.Lock(engine, "job").acquire()
    time.sleep(0.3)
    heir = L.Lock(engine, "job")
    assert heir.acquire()
    assert not dead.renew() and dead.lost
    dead.release()  # must not delete the heir's row
    assert L.Lock(engine, "job").current()[0] == heir.holder


def test_held_renews_while_working_and_releases_on_error(db_url):
    engine = get_engine(db_url)
    with pytest.raises(RuntimeError):
        with L.held(engine, "job", ttl=0.6) as lock:
            first_expiry = lock.current()[1]
            time.sleep(0.9)  # longer than the TTL: only renewal keeps it
            assert not L.Lock(engine, "job").acquire()
            assert lock.current()[1] > first_expiry and not lock.lost
            raise RuntimeError("the send blew up")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(locks)).scalar() == 0


def test_held_says_who_holds_it(db_url):
    engine = get_engine(db_url)
    with L.held(engine, "job", holder="cron@box:42"):
        with pytest.raises(L.LockBusy, match="cron@box:42"):
            with L.held(engine, "job"):
                pass


RACER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from newsletter.db import get_engine
    from newsletter.send.lock import held, LockBusy
    engine = get_engine(sys.argv[1])
    start, tried, racers = float(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    time.sleep(max(0.0, start - time.time()))
    try:
        with held(engine, "send-due"):
            (tried / str(os.getpid())).touch()
            deadline = time.time() + 60
            while len(list(tried.iterdir())) < racers and time.time() < deadline:
                time.sleep(0.02)  # hold the lock until every racer has tried
            print("acquired", flush=True)
    except LockBusy:
        (tried / str(os.getpid())).touch()
        print("busy", flush=True)
    """
)


def test_processes_racing_for_the_lock_exactly_one_wins(db_url, tmp_path):
    get_engine(db_url)  # schema created before the race
    script, tried = tmp_path / "racer.py", tmp_path / "tried"
    script.write_text(RACER)
    tried.mkdir()
    start = time.time() + 2.0  # the racers wake at the same instant, after their imports
    procs = [
        subprocess.Popen([sys.executable, str(script), db_url, str(start), str(tried), "3"], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outs = sorted(p.communicate(timeout=90)[0].strip() for p in procs)
    assert outs == ["acquired", "busy", "busy"]


# -------------------------------------------------------------------------------------------- send-due


def test_nothing_due_and_lock_busy(tmp_path, db_url):
    cfg = write_project(tmp_path, {"2026-12": {}})
    engine = get_engine(db_url)
    quiet = S.send_due(cfg, now=seoul(2026, 11, 20, 12, 0), engine=engine, progress=False)
    assert quiet.ran and quiet.outcomes == [] and quiet.ok
    assert quiet.next_slot.issue == "2026-12"
    with L.held(engine, S.LOCK_NAME, holder="other-run"):
        busy = S.send_due(cfg, now=seoul(2026, 12, 1, 10, 5), engine=engine, progress=False)
    assert not busy.ran and busy.holder == "other-run" and busy.ok
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sends)).scalar() == 0


def send_project(root: Path, people: int = 24, **schedule):
    """A project the real sender can send: config, the example issue as content/2026-11, its build, a list."""
    write_config(root)
    data = yaml.safe_load((root / "config.yaml").read_text(encoding="utf-8"))
    data["schedule"] = {"rule": "first tuesday 10:00", **schedule}
    (root / "config.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    shutil.copytree(EXAMPLE_ISSUE, root / "content" / "2026-11")
    write_build(root, "2026-11")
    write_subscribers(root, audience(people))
    return load_config(root / "config.yaml")


def ledger(url: str) -> tuple[int, int, int]:
    """Real sends, delivery rows, distinct addresses."""
    with get_engine(url).connect() as conn:
        n_sends = conn.execute(sa.select(sa.func.count()).select_from(sends).where(sends.c.kind == "real")).scalar()
        rows = conn.execute(sa.select(sa.func.count()).select_from(deliveries)).scalar()
        distinct = conn.execute(sa.select(sa.func.count(sa.distinct(deliveries.c.address)))).scalar()
    return n_sends, rows, distinct


def test_two_send_due_started_at_once_send_exactly_once(tmp_path, db_url):
    send_project(tmp_path, people=24)
    get_engine(db_url)
    cmd = [sys.executable, "-m", "newsletter", "send-due", "--json", "--now", "2026-11-03T10:05"]
    procs = [
        subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "DATABASE_URL": db_url})
        for _ in range(2)
    ]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    for code, _, err in results:
        assert code == 0, err
    reports = [json.loads(out) for _, out, _ in results]
    sent = [o for r in reports for o in r["outcomes"] if o["state"] == "sent"]
    assert len(sent) == 1 and sent[0]["result"]["sent_now"] == 24
    # the other run either found the lock held or, once it got it, found the issue already sent
    assert sum(1 for r in reports if not r["ran"] or not r["outcomes"]) == 1

    assert len(list((tmp_path / "outbox" / "2026-11").glob("*.eml"))) == 24
    assert ledger(db_url) == (1, 24, 24)

    cfg = load_config(tmp_path / "config.yaml")
    again = S.send_due(cfg, now=seoul(2026, 11, 3, 10, 10), engine=get_engine(db_url), progress=False)
    assert again.ran and again.outcomes == []
    listing = S.plan(cfg, now=seoul(2026, 11, 3, 10, 10), count=1, engine=get_engine(db_url))
    assert (listing.entries[0].issue, listing.entries[0].state) == ("2026-11", "sent")
    assert ledger(db_url) == (1, 24, 24)


def test_send_due_refuses_an_ad_issue_in_quiet_hours(tmp_path, sqlite_url):
    """Through the CLI (once: the refusal is decided before the database matters), as cron would see it."""
    send_project(tmp_path, people=5, rule="first tuesday 21:30")
    out = cli(tmp_path, "send-due", "--now", "2026-11-03T21:35")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "refused: 2026-11:" in out.stderr and "quiet hours 21:00-08:00" in out.stderr
    assert not (tmp_path / "outbox").exists()
    assert ledger(sqlite_url) == (0, 0, 0)


def test_send_due_before_the_slot_sends_nothing_and_after_catch_up_leaves_it(tmp_path, db_url):
    cfg = send_project(tmp_path, people=5)
    engine = get_engine(db_url)
    early = S.send_due(cfg, now=seoul(2026, 11, 3, 9, 55), engine=engine, progress=False)
    late = S.send_due(cfg, now=seoul(2026, 11, 7, 10, 5), engine=engine, progress=False)
    assert early.outcomes == [] and late.outcomes == []
    assert ledger(db_url) == (0, 0, 0)


def test_send_due_reports_an_unbuilt_issue_and_goes_on(tmp_path, db_url):
    cfg = send_project(tmp_path, people=5)
    shutil.rmtree(tmp_path / "build")
    result = S.send_due(cfg, now=seoul(2026, 11, 3, 10, 5), engine=get_engine(db_url), progress=False)
    assert not result.ok and [o.state for o in result.outcomes] == ["failed"]
    assert "newsletter build 2026-11" in result.outcomes[0].message


def test_a_send_that_paused_itself_is_reported_not_resumed(tmp_path, db_url):
    """A rejection spike paused the send: send-due must not push on every five minutes; it says so and exits 1."""
    cfg = send_project(tmp_path, people=5)
    with get_engine(db_url).begin() as conn:
        conn.execute(sends.insert().values(issue="2026-11", kind="real", backend="smtp", status="open",
                                           note="paused: 7% of the last 100 recipients rejected"))
    result = S.send_due(cfg, now=seoul(2026, 11, 3, 10, 5), engine=get_engine(db_url), progress=False)
    assert not result.ok and [o.state for o in result.outcomes] == ["paused"]
    assert "7% of the last 100" in result.outcomes[0].message and "newsletter send 2026-11" in result.outcomes[0].message
    assert ledger(db_url) == (1, 0, 0)


def test_after_a_killed_run_the_next_one_takes_the_lock_and_resumes_the_send(tmp_path, db_url):
    """A send-due killed mid-send leaves its lock row and an open send; once the lease ran out the next run
    takes the lock over and the sender finishes the open send: everyone once, nobody twice."""
    from newsletter.send import ledger as sender_ledger
    from newsletter.send.runner import plan_send

    cfg = send_project(tmp_path, people=12)
    engine = get_engine(db_url)
    snapshot = plan_send(cfg, "2026-11", engine=engine, progress=False)
    open_id = sender_ledger.create_send(engine, issue="2026-11", kind="real", backend="outbox", rows=snapshot.rows)
    killed = L.Lock(engine, S.LOCK_NAME, ttl=0.3, holder="killed-run")
    assert killed.acquire()

    blocked = S.send_due(cfg, now=seoul(2026, 11, 3, 10, 5), engine=engine, progress=False)
    assert not blocked.ran and blocked.holder == "killed-run"
    time.sleep(0.4)
    entry = S.plan(cfg, now=seoul(2026, 11, 3, 10, 5), count=1, engine=engine).entries[0]
    assert entry.state == "due" and entry.send_id == open_id
    resumed = S.send_due(cfg, now=seoul(2026, 11, 3, 10, 5), engine=engine, progress=False)
    assert resumed.ran and [o.state for o in resumed.outcomes] == ["sent"]
    assert resumed.outcomes[0].result.send_id == open_id
    assert len(list((tmp_path / "outbox" / "2026-11").glob("*.eml"))) == 12
    assert ledger(db_url) == (1, 12, 12)
