"""``newsletter new <issue-id>``: start the next issue with the previous one's structure.

The new folder gets an ``issue.md`` with the next number, the same ``ad`` flag and the required
fields left empty, and one article file per article of the previous issue (same order, same
``audience``), so ``newsletter check`` lists exactly what is left to write.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .content import ISSUE_FILE, article_slug, content_root, list_issues, read_issue
from .errors import UserError

_ISSUE_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$")


@dataclass
class Scaffold:
    issue_id: str
    folder: Path
    previous: str | None
    files: list[Path] = field(default_factory=list)
    date: dt.date | None = None
    note: str = ""          # where ``date`` came from (the schedule slot, or why the 1st)


def _yaml_value(value) -> str:
    return yaml.safe_dump(value, allow_unicode=True, default_flow_style=True).strip().removesuffix("...").strip()


def _issue_date(cfg, issue_id: str) -> tuple[dt.date, str]:
    """The planned send date of a month issue (its slot under ``schedule.rule``) and a comment for
    ``date:``; the 1st of the month when there is no rule, today for an issue that is not a month."""
    m = re.fullmatch(r"(\d{4})-(\d{2})", issue_id)
    if not (m and 1 <= int(m.group(2)) <= 12):
        return dt.date.today(), ""
    first = dt.date(int(m.group(1)), int(m.group(2)), 1)
    from .send.schedule import fmt_local, month_slot

    try:
        slot = month_slot(cfg, issue_id)
    except UserError as exc:
        return first, f"schedule.rule을 읽지 못해 1일로 둠 ({exc})"
    if slot is None:
        why = "schedule.rule이 없어" if not (cfg.schedule.rule or "").strip() else "schedule.rule에 이달 발송이 없어"
        return first, f"{why} 1일로 둠: 발송일로 고치세요"
    moved = f", {slot.moved_because} 피해 옮김" if slot.moved_from else ""
    return slot.local.date(), f"발송 예정 {fmt_local(slot.local)} (schedule.rule: {cfg.schedule.rule}{moved})"


def new_issue(cfg, issue_id: str) -> Scaffold:
    if not _ISSUE_ID.match(issue_id):
        raise UserError(f"issue id {issue_id!r}: use letters, digits, '-', '.', '_' (e.g. 2026-12); it becomes the URL")
    folder = content_root(cfg) / issue_id
    if folder.exists():
        raise UserError(f"{folder} already exists; pick another issue id or edit that issue")
    older = [i for i in list_issues(cfg) if i < issue_id] or list_issues(cfg)
    previous_id = older[-1] if older else None
    number, ad, articles = 1, False, [(1, None)]
    if previous_id:
        prev, _problems = read_issue(cfg, previous_id)   # only its shape is used, so problems do not matter
        number, ad = (prev.number or 0) + 1, prev.ad
        shapes = [(article_slug(p)[0], None) for p in sorted(prev.folder.glob("*.md"))
                  if p.name != ISSUE_FILE and article_slug(p)]
        audiences = {a.order: a.audience for a in prev.articles}
        articles = [(order, audiences.get(order)) for order, _ in shapes] or articles

    date, note = _issue_date(cfg, issue_id)
    folder.mkdir(parents=True)
    result = Scaffold(issue_id, folder, previous_id, date=date, note=note)
    issue_md = folder / ISSUE_FILE
    issue_md.write_text(
        "---\n"
        'title: ""        # 이번 호 제목 (웹 페이지와 메일 본문 머리)\n'
        'subject: ""      # 메일 제목; ad: true면 빌드가 앞에 (광고)를 붙입니다\n'
        'preheader: ""    # 받은편지함에서 제목 옆에 보이는 한 줄 소개\n'
        f"date: {date.isoformat()}" + (f"    # {note}" if note else "") + "\n"
        f"number: {number}\n"
        f"ad: {'true' if ad else 'false'}        # 상품·서비스 홍보가 있으면 true (정보통신망법 제50조)\n"
        "---\n"
        "편집자 글을 여기에 씁니다. %%name%%님처럼 받는 분 이름을 넣을 수 있습니다.\n",
        encoding="utf-8",
    )
    result.files.append(issue_md)
    width = max(2, len(str(len(articles))))
    for i, (order, audience) in enumerate(articles, start=1):
        path = folder / f"{order:0{width}d}-article-{i}.md"
        lines = [
            "---",
            'title: ""',
            'summary: ""      # 메일에 실리는 두세 문장 요약',
            'image: ""        # 이 폴더에 둔 이미지 파일 이름 (예: roastery.jpg)',
            'image_alt: ""    # 이미지를 설명하는 문장 (화면 낭독기와 이미지 차단 시 표시)',
            'author: ""',
        ]
        if audience:
            lines.append(f"audience: {_yaml_value(list(audience))}   # 이 등급에게만 보입니다")
        lines += ["---", "본문을 Markdown으로 씁니다. 파일 이름의 article-N을 글의 주소(slug)로 바꾸세요.", ""]
        path.write_text("\n".join(lines), encoding="utf-8")
        result.files.append(path)
    return result
