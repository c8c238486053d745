"""Benchmark ``newsletter lists clean`` on a generated 1,000,000-row list (goal: < 60 s, < 2 GB on 2 cores).

    python bench/bench_lists.py [--rows 1000000] [--keep DIR]

Generates subscribers.csv (duplicates, case/full-width/angle noise, domain typos, invalid rows), a roster of
key customers and suppressions, runs the real CLI in a subprocess and prints wall time, rows/s and the
child's peak RSS.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOMAINS = ["naver.com"] * 30 + ["gmail.com"] * 20 + ["hanmail.net"] * 10 + ["daum.net"] * 8 + ["kakao.com"] * 6 \
    + ["nate.com"] * 5 + ["hotmail.com"] * 3 + [f"company{i}.co.kr" for i in range(3000)]
TYPOS = ["naver.con", "gmial.com", "hanmail.ent", "navre.com", "kakao.co", "nater.com", "daum.ne", "gmai.com"]
INVALID = ["", "N/A", "없음", "kim lee@naver.com", "noatsign.naver.com", "a@b@naver.com", "x@naver.com.", "y@hotmail"]
TIERS = ["regular"] * 60 + ["prospect"] * 25 + ["loyal"] * 13 + ["key"] * 2
NAMES = ["김민수", "이지우", "박서연", "최유나", "정하나", "Grace Heo", "Tony Jung", "윤빈태"]


def generate(folder: Path, rows: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    uniques: list[str] = []
    with (folder / "subscribers.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["email", "name", "company", "tier", "tags", "consent_at", "owner"])
        for i in range(rows):
            r = rnd.random()
            if r < 0.06 and uniques:  # duplicate with noise
                email = rnd.choice(uniques)
                email = rnd.choice([email.upper(), f" {email} ", f"<{email}>", f"mailto:{email}", email])
            elif r < 0.07:
                email = f"user{i}@{rnd.choice(TYPOS)}"
            elif r < 0.08:
                email = rnd.choice(INVALID)
            else:
                email = f"user{i}.{rnd.randrange(10**6)}@{rnd.choice(DOMAINS)}"
                uniques.append(email)
            w.writerow([email, rnd.choice(NAMES), f"회사{rnd.randrange(5000)}", rnd.choice(TIERS),
                        "b2b;교육" if r > 0.5 else "", "2024-01-02", f"rep-{rnd.randrange(12)}"])
    with (folder / "key-customers.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["customer_id", "name", "company", "email", "owner"])
        for n, email in enumerate(rnd.sample(uniques, 2000)):
            w.writerow([f"KC-{n:05d}", rnd.choice(NAMES), "", email.upper() if n % 3 == 0 else email, "rep-1"])
    with (folder / "suppressions.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["email", "reason", "at"])
        for email in rnd.sample(uniques, 20_000):
            w.writerow([email, rnd.choice(["unsubscribed", "hard_bounce", "complaint"]), "2024-05-01T10:00:00+09:00"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keep", type=Path, help="generate into (and keep) this folder")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-lists-"))
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "subscribers.csv").exists():
        t = time.perf_counter()
        generate(folder, args.rows)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - t:.1f} s ({folder})")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{folder / 'bench.sqlite3'}"}
    cmd = [sys.executable, "-m", "newsletter", "lists", "clean", "--config", str(folder / "none.yaml"),
           "--subscribers", str(folder / "subscribers.csv"), "--key-customers", str(folder / "key-customers.csv"),
           "--suppressions", str(folder / "suppressions.csv"), "--out", str(folder / "out"), "--json"]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode:
        sys.exit(proc.stderr)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    import json

    summary = json.loads(proc.stdout)["summary"]
    print(f"lists clean: {summary['rows']:,} rows in {wall:.1f} s = {summary['rows'] / wall:,.0f} rows/s; "
          f"peak RSS {peak_mb:,.0f} MB")
    print(f"  audience {summary['deliverable']:,}, verdicts {summary['verdict']}, repairs {summary['repairs']:,}, "
          f"attention {summary['attention']}")
    print(f"  goal: < 60 s and < 2048 MB -> {'OK' if wall < 60 and peak_mb < 2048 else 'MISSED'}")


if __name__ == "__main__":
    main()
