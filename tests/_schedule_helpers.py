"""A small project for the schedule tests: the repository's config and real example issue, copied per month."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import frontmatter
import yaml

from newsletter.config import load_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_ISSUE = ROOT / "content" / "2026-11"  # a complete issue (ad: true) written by the content stage


def write_project(root: Path, issues: dict[str, dict] | None = None, **schedule):
    """config.yaml (the repository's, with ``schedule`` overrides) and one copy of the example issue per id.

    ``issues`` maps an issue id to front-matter changes (a value of None deletes the key).
    """
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["schedule"].update(schedule)
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    for issue_id, changes in (issues or {}).items():
        folder = root / "content" / issue_id
        shutil.copytree(EXAMPLE_ISSUE, folder)
        post = frontmatter.load(folder / "issue.md")
        for key, value in changes.items():
            if value is None:
                post.metadata.pop(key, None)
            else:
                post.metadata[key] = value
        (folder / "issue.md").write_text(frontmatter.dumps(post), encoding="utf-8")
    return load_config(root / "config.yaml")


def seoul(*args) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime(*args, tzinfo=ZoneInfo("Asia/Seoul"))


def cli(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "newsletter", *args], cwd=root, capture_output=True, text=True, timeout=timeout
    )
