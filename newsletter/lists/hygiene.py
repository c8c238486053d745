"""The lists stage: subscribers + roster + suppressions ▸ read ▸ normalize ▸ repair ▸ dedupe ▸ suppress ▸ guard.

``clean_lists`` returns the audience of a send and accounts for every input row (rejected) and every key
customer (attention); ``write_outputs`` puts them in audience.csv, attention.csv, rejected.csv, repairs.csv
and summary.json.
"""

from __future__ import annotations

import gc
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config
from ..errors import UserError
from .dedupe import TIER_ALIASES, TIER_RANK, Record, Row, dedupe
from .guard import Attention, Customer, attention_rows, read_roster, resolve_roster
from .io import BadRow, Table, read_table, write_csv
from .normalize import canonicalize, resolve

SUPPRESSION_REASONS = ("unsubscribed", "hard_bounce", "complaint")
PROGRESS_FROM = 20_000  # rows; smaller lists finish before a bar would be seen


@dataclass(frozen=True, slots=True)
class Recipient:
    """One deliverable address of the audience."""

    email: str
    name: str
    company: str
    tier: str
    owner: str
    key: bool
    tags: tuple[str, ...] = ()
    repaired_from: str | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """An input row that is not in the audience, and why: invalid[:reason], duplicate_of:<email>, suppressed:<reason>."""

    file: str
    row: int  # 0-based data-row index (header excluded)
    line: int  # line in the file (1-based; the header is line 1)
    email: str  # the cell as written
    reason: str
    detail: str = ""


@dataclass
class HygieneResult:
    audience: list[Recipient]
    attention: list[Attention]
    rejected: list[Rejected]
    summary: dict
    rows: list[Row] = field(default_factory=list)
    customers: list[Customer] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def repairs(self) -> list[Row]:
        return [r for r in self.rows if r.repaired_from]


def _split_tags(value: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in value.split(";") if t.strip()) if value else ()


def build_rows(table: Table, warnings: list[str], progress=None) -> list[Row]:
    """Subscriber rows with their address resolved; unreadable rows become invalid rows, never lost.

    ``table`` is read lazily: rows are built as the CSV is parsed, tags parsed once per distinct value.
    """
    ix = {n: table.col(n) for n in ("email", "name", "company", "tier", "tags", "owner")}
    e, n, c, t, g, o = (ix[k] for k in ("email", "name", "company", "tier", "tags", "owner"))
    rows: list[Row] = []
    unknown_tiers: Counter = Counter()
    tag_cache: dict[str, tuple[str, ...]] = {}
    for index, line, f in table.stream if table.stream is not None else ((i, ln, f) for i, ln, f in table.rows):
        if isinstance(f, BadRow):
            rows.append(_bad_row(f))
            warnings.append(f"{table.path}:{f.line}: row {f.index} {f.detail}; listed in rejected.csv")
            continue
        tier = f[t].strip().lower() if t is not None else ""
        if tier not in TIER_RANK:
            tier = TIER_ALIASES.get(tier, tier)
        if tier not in TIER_RANK:
            if tier:
                unknown_tiers[tier] += 1
            tier = "regular"
        tags = ()
        if g is not None and f[g]:
            tags = tag_cache.get(f[g])
            if tags is None:
                tags = tag_cache.setdefault(f[g], _split_tags(f[g]))
        raw = f[e]
        normalized, canonical, repaired_from, reason, detail = resolve(raw)
        row = Row(index, line, raw, f[n].strip() if n is not None else "", f[c].strip() if c is not None else "",
                  tier, tags, f[o].strip() if o is not None else "", normalized, canonical, repaired_from)
        if reason:
            row.verdict, row.invalid_reason, row.detail = "invalid", reason, detail
        elif repaired_from:
            row.verdict = "repaired"
        rows.append(row)
        if progress and index % 10_000 == 0:
            progress(index)
    for tier, count in unknown_tiers.items():
        warnings.append(f"{table.path}: unknown tier {tier!r} on {count} row(s), treated as regular")
    return rows


def _bad_row(bad: BadRow) -> Row:
    return Row(bad.index, bad.line, bad.email, normalized=canonicalize(bad.email), verdict="invalid",
               invalid_reason=bad.reason, detail=bad.detail)


def load_suppressions(path: Path, engine, warnings: list[str], explicit: bool,
                      header_map: dict[str, str] | None = None) -> dict[str, str]:
    """canonical address -> reason, from suppressions.csv and the active rows of the suppressions table."""
    out: dict[str, str] = {}
    if path.exists():
        table = read_table(path, header_map=header_map)
        r, a = table.col("reason"), table.col("email")
        for _index, line, f in table.rows:
            reason = f[r].strip() if r is not None else "unsubscribed"
            if reason not in SUPPRESSION_REASONS:
                warnings.append(f"{path}:{line}: unknown reason {reason!r}; the address is suppressed anyway")
            _add_suppression(out, f[a], reason or "unsubscribed")
        for bad in table.bad:
            warnings.append(f"{path}:{bad.line}: {bad.detail}; " + (
                f"{bad.email.strip()} suppressed anyway" if bad.email.strip() else "row ignored"))
            if bad.email.strip():
                _add_suppression(out, bad.email, "unsubscribed")
    elif explicit:
        raise UserError("file not found", where=str(path))
    else:
        warnings.append(f"{path}: not found; only the database's suppressions apply")
    if engine is not None:
        from .. import db

        with engine.connect() as conn:
            for address, reason in conn.execute(
                    db.suppressions.select().with_only_columns(db.suppressions.c.address, db.suppressions.c.reason)
                    .where(db.suppressions.c.active.is_(True)).order_by(db.suppressions.c.id)):
                _add_suppression(out, address, reason)
    return out


def _add_suppression(out: dict[str, str], raw: str, reason: str) -> None:
    """Suppress the canonical form and, when it differs, the repaired form: err on the side of not mailing."""
    normalized, canonical, *_ = resolve(raw)
    for address in {normalized, canonical} - {None, ""}:
        out.setdefault(address, reason)


def load_holds(engine) -> dict[str, str]:
    if engine is None:
        return {}
    from .. import db

    with engine.connect() as conn:
        return {d: r for d, r in conn.execute(
            db.domain_holds.select().with_only_columns(db.domain_holds.c.domain, db.domain_holds.c.reason)
            .where(db.domain_holds.c.active.is_(True)))}


def clean_lists(cfg: Config, *, subscribers=None, key_customers=None, suppressions=None, encoding=None,
                engine=None, progress=True, check_mx: bool = False, resolver=None) -> HygieneResult:
    """The audience of a send plus an account of every row and every key customer (see docs/lists.md)."""
    # Millions of small objects and no reference cycles: the cyclic GC would only rescan them again and again.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _clean(cfg, subscribers, key_customers, suppressions, encoding, engine, progress, check_mx, resolver)
    finally:
        if enabled:
            gc.enable()


def _clean(cfg, subscribers, key_customers, suppressions, encoding, engine, progress, check_mx, resolver):
    from .. import db

    if engine is None:
        engine = db.get_engine(cfg)
    warnings: list[str] = []
    sub_path = Path(subscribers) if subscribers else cfg.path(cfg.lists.subscribers)
    roster_path = Path(key_customers) if key_customers else cfg.path(cfg.lists.key_customers)
    supp_path = Path(suppressions) if suppressions else cfg.path(cfg.lists.suppressions)
    header_map = cfg.lists.header_map

    table = read_table(sub_path, header_map=header_map, encoding=encoding, lazy=True)
    file = sub_path.name
    with _progress(progress and table.size_hint >= PROGRESS_FROM, table.size_hint) as tick:
        rows = build_rows(table, warnings, tick)
    if check_mx:
        from .mx import apply_mx_check

        apply_mx_check(rows, warnings, resolver)
    records = dedupe(rows)
    suppressed = load_suppressions(supp_path, engine, warnings, explicit=suppressions is not None,
                                   header_map=header_map)
    held = load_holds(engine)
    for canonical, rec in records.items():
        if canonical in suppressed:
            rec.row.verdict, rec.row.suppression_reason = "suppressed", suppressed[canonical]
        elif (domain := canonical.rpartition("@")[2]) in held:
            rec.row.verdict, rec.row.detail = "held", f"mail to {domain} is on hold: {held[domain]}"

    customers: list[Customer] = []
    if roster_path.exists():
        roster_table = read_table(roster_path, header_map=header_map, encoding=None)
        customers = read_roster(roster_table)
        for bad in roster_table.bad:
            warnings.append(f"{roster_path}:{bad.line}: {bad.detail}; listed in attention.csv")
    elif key_customers is not None:
        raise UserError("file not found (the key-customer roster)", where=str(roster_path))
    else:
        warnings.append(f"{roster_path}: key-customer roster not found; only rows with tier 'key' are checked")
    resolve_roster(customers, rows, records, suppressed, held, file)
    _mark_keys(rows, records, customers)
    attention = attention_rows(customers, rows, records, file)
    audience = [_recipient(rec) for rec in records.values() if rec.row.verdict in ("keep", "repaired")]
    rejected = [_rejected(file, r) for r in rows if r.verdict not in ("keep", "repaired")]
    summary = _summary(rows, records, audience, attention, customers, suppressed, held, table, warnings)
    return HygieneResult(audience, attention, rejected, summary, rows, customers, warnings)


def _mark_keys(rows: list[Row], records: dict[str, Record], customers: list[Customer]) -> None:
    """A row is key when its merged record is key or it belongs to a roster customer."""
    on_roster = {i for c in customers for i in c.rows}
    for row in rows:
        rec = records.get(row.canonical) if row.canonical else None
        row.key = row.index in on_roster or (rec.tier == "key" if rec else row.tier == "key")
    for rec in records.values():
        if rec.row.key:
            rec.tier = "key"  # the CRM roster says so, whatever tier the list gave


def _recipient(rec: Record) -> Recipient:
    row = rec.row
    return Recipient(row.canonical, rec.name, rec.company, rec.tier, rec.owner, rec.tier == "key",
                     tuple(rec.tags), row.repaired_from)


def _rejected(file: str, row: Row) -> Rejected:
    if row.verdict == "invalid":
        reason = f"invalid:{row.invalid_reason}"
    elif row.verdict == "duplicate_of":
        reason = f"duplicate_of:{row.canonical}"
    elif row.verdict == "suppressed":
        reason = f"suppressed:{row.suppression_reason}"
    else:
        reason = f"held:{row.canonical.rpartition('@')[2]}"
    detail = row.detail
    if row.verdict == "duplicate_of":
        detail = f"same address as row {row.duplicate_of}"
    if row.repaired_from:
        detail = f"{detail}; repaired from {row.repaired_from}".lstrip("; ")
    return Rejected(file, row.index, row.line, row.raw, reason, detail)


def _summary(rows, records, audience, attention, customers, suppressed, held, table, warnings) -> dict:
    return {
        "file": str(table.path),
        "encoding": table.encoding,
        "rows": len(rows),
        "verdict": dict(Counter(r.verdict for r in rows)),
        "invalid_reason": dict(Counter(r.invalid_reason for r in rows if r.invalid_reason)),
        "repairs": sum(1 for r in rows if r.repaired_from),
        "unique_addresses": len(records),
        "deliverable": len(audience),
        "deliverable_key": sum(1 for r in audience if r.key),
        "by_tier": dict(Counter(r.tier for r in audience)),
        "attention": dict(Counter(a.reason for a in attention)),
        "roster_customers": len(customers),
        "roster_status": dict(Counter(c.status for c in customers)),
        "suppressions_known": len(suppressed),
        "domain_holds": sorted(held),
        "ignored_columns": table.ignored_columns,
        "warnings": len(warnings),
    }


class _progress:
    """A rich progress bar on stderr for large lists; a no-op otherwise."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total, self.bar = enabled, total, None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.progress import Progress

        from ..cli.common import err_console

        self.bar = Progress(console=err_console, transient=True)
        self.bar.start()
        task = self.bar.add_task("cleaning rows", total=self.total)
        return lambda done: self.bar.update(task, completed=done)

    def __exit__(self, *exc):
        if self.bar:
            self.bar.stop()


def write_outputs(result: HygieneResult, out: Path) -> dict[str, Path]:
    """audience.csv, attention.csv, rejected.csv, repairs.csv and summary.json in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in
             ("audience.csv", "attention.csv", "rejected.csv", "repairs.csv", "summary.json")}
    write_csv(paths["audience.csv"], ("email", "name", "company", "tier", "owner", "key", "repaired_from"),
              ((r.email, r.name, r.company, r.tier, r.owner, "true" if r.key else "false", r.repaired_from or "")
               for r in result.audience))
    write_csv(paths["attention.csv"], ("email", "name", "company", "owner", "reason", "detail"),
              ((a.email, a.name, a.company, a.owner, a.reason, a.detail) for a in result.attention))
    write_csv(paths["rejected.csv"], ("file", "row", "line", "email", "reason", "detail"),
              ((r.file, r.row, r.line, r.email, r.reason, r.detail) for r in result.rejected))
    write_csv(paths["repairs.csv"], ("row", "line", "from", "to", "verdict"),
              ((r.index, r.line, r.repaired_from, r.canonical, r.verdict) for r in result.repairs))
    paths["summary.json"].write_text(json.dumps(result.summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return paths
