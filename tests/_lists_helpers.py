"""Shared bits of the lists and bounces tests: a config in a temp folder, CSV writers, corpus truth."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from conftest import CORPUS

from newsletter.config import Config

LISTS = CORPUS / "lists"
BOUNCES = CORPUS / "bounces"
HEADER = ("email", "name", "company", "tier", "tags", "consent_at", "owner")


def truth() -> dict:
    return json.loads((LISTS / "truth.json").read_text(encoding="utf-8"))


def bounce_truth() -> dict:
    return json.loads((BOUNCES / "truth.json").read_text(encoding="utf-8"))


def make_config(root: Path) -> Config:
    """A config rooted in ``root`` with the repository's Korean header map."""
    from newsletter.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[1] / "config.yaml")
    cfg.root = root
    return cfg


def csv_bytes(rows, header=HEADER, encoding="utf-8") -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode(encoding)


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))
