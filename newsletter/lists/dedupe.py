"""Merge rows that share a canonical address into one record.

The first row in file order is the record; later rows point at it (``duplicate_of``). The merged record keeps
the highest tier (so a key copy anywhere keeps the record key), the union of tags, and the first non-empty
name, company and owner.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TIERS = ("key", "loyal", "regular", "prospect")  # highest first
TIER_RANK = {t: len(TIERS) - i for i, t in enumerate(TIERS)}
# Tier words Korean CRM exports use instead of the English names.
TIER_ALIASES = {"핵심": "key", "주요": "key", "단골": "loyal", "우수": "loyal", "일반": "regular",
                "잠재": "prospect", "가망": "prospect"}


@dataclass(slots=True)
class Row:
    """One subscriber row and what hygiene decided about it."""

    index: int  # 0-based data-row index in its file (header excluded)
    line: int  # line in the file where the row starts
    raw: str
    name: str = ""
    company: str = ""
    tier: str = "regular"
    tags: tuple[str, ...] = ()
    owner: str = ""
    normalized: str = ""
    canonical: str | None = None
    repaired_from: str | None = None
    verdict: str = "keep"  # keep | repaired | invalid | duplicate_of | suppressed | held
    invalid_reason: str | None = None
    detail: str = ""
    duplicate_of: int | None = None
    suppression_reason: str | None = None
    key: bool = False


@dataclass(slots=True)
class Record:
    """The merged record of one canonical address."""

    row: Row  # the first row in file order
    tier: str
    tags: tuple[str, ...] = ()
    name: str = ""
    company: str = ""
    owner: str = ""
    rows: list[int] = field(default_factory=list)  # indexes of every row of the group, record first


def dedupe(rows: list[Row]) -> dict[str, Record]:
    """Group valid rows by canonical address (dict order = file order of the record rows)."""
    records: dict[str, Record] = {}
    rank = TIER_RANK
    for row in rows:
        canonical = row.canonical
        if canonical is None:
            continue
        rec = records.get(canonical)
        if rec is None:
            records[canonical] = Record(row, row.tier, row.tags, row.name, row.company, row.owner, [row.index])
            continue
        row.verdict = "duplicate_of"
        row.duplicate_of = rec.row.index
        rec.rows.append(row.index)
        if rank.get(row.tier, 0) > rank.get(rec.tier, 0):
            rec.tier = row.tier
        if row.tags and row.tags != rec.tags:
            rec.tags = rec.tags + tuple(tag for tag in row.tags if tag not in rec.tags)
        rec.name = rec.name or row.name
        rec.company = rec.company or row.company
        rec.owner = rec.owner or row.owner
    return records
