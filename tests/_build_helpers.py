"""Small issues written into tmp_path for the content/render/check tests (good and deliberately bad)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

ISSUE_META = {
    "title": "가온레터 11월호",
    "subject": "첫 추위, 따뜻한 한 잔을 준비했습니다",
    "preheader": "성수 로스터리 오픈 소식과 겨울 블렌드",
    "date": "2026-11-03",
    "number": 12,
    "ad": False,
}


def article_meta(title: str, **extra) -> dict:
    meta = {
        "title": title,
        "summary": f"{title} 요약입니다.",
        "image": "photo.png",
        "image_alt": f"{title} 사진",
        "author": "김가온",
    }
    meta.update(extra)
    return meta


def write_md(path: Path, meta: dict | None, body: str = "") -> Path:
    """A Markdown file with a front-matter block (None: no front matter at all)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    head = "" if meta is None else "---\n" + yaml.safe_dump(meta, allow_unicode=True, sort_keys=False) + "---\n"
    path.write_text(head + body, encoding="utf-8")
    return path


def write_image(path: Path, size=(1200, 600)) -> Path:
    Image.new("RGB", size, (180, 120, 80)).save(path)
    return path


def make_project(tmp_path: Path, *, issue_id: str = "2026-11", issue: dict | None = None,
                 articles: dict[str, dict] | None = None, note: str = "이번 달 소식을 전합니다.") -> Path:
    """A project folder: the repo's config.yaml and templates, and one small issue."""
    project = tmp_path / "proj"
    project.mkdir(exist_ok=True)
    shutil.copy(ROOT / "config.yaml", project / "config.yaml")
    if not (project / "templates").exists():
        shutil.copytree(ROOT / "templates", project / "templates")
    add_issue(project, issue_id, issue=issue, articles=articles, note=note)
    return project


def add_issue(project: Path, issue_id: str, *, issue: dict | None = None,
              articles: dict[str, dict] | None = None, note: str = "이번 달 소식을 전합니다.") -> Path:
    folder = project / "content" / issue_id
    folder.mkdir(parents=True, exist_ok=True)
    write_md(folder / "issue.md", {**ISSUE_META, **(issue or {})}, note + "\n")
    write_image(folder / "photo.png")
    if articles is None:
        articles = {
            "01-new-roastery.md": article_meta("성수 로스터리 오픈"),
            "02-winter-blend.md": article_meta("겨울 블렌드 출시"),
        }
    for name, meta in articles.items():
        write_md(folder / name, meta, f"{meta.get('title', name)} 본문입니다.\n")
    return folder


def config(project: Path):
    from newsletter.config import load_config

    return load_config(project / "config.yaml")
