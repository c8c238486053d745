"""Account for every key customer: each one on the CRM roster either receives the send or is on attention.csv.

Resolution per roster customer, first match wins: ``invalid`` (the roster address is unusable) ▸
``unrepairable`` (an ambiguous domain typo) ▸ ``missing_from_list`` (no list row has that address) ▸
``suppressed`` (unsubscribed, bounced, complained — never mailed, but never silently gone either) ▸
``domain_hold`` ▸ send. Key rows on the list that match no roster entry are accounted for the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .dedupe import Record, Row
from .io import Table
from .normalize import describe, resolve


@dataclass(frozen=True, slots=True)
class Attention:
    """A key customer who will not receive this send, and why (attention.csv)."""

    email: str
    name: str
    company: str
    owner: str
    reason: str  # missing_from_list | unsubscribed | hard_bounce | complaint | invalid | domain_hold
    detail: str
    customer_id: str = ""
    rows: tuple[int, ...] = ()  # subscriber rows of this customer (0-based data-row indexes)


@dataclass(slots=True)
class Customer:
    """One roster entry and how it resolved against the list."""

    customer_id: str
    name: str
    company: str
    email: str
    owner: str
    line: int
    normalized: str = ""
    canonical: str | None = None
    status: str = "send"  # send | invalid | unrepairable | missing_from_list | suppressed | domain_hold
    suppression_reason: str | None = None
    detail: str = ""
    rows: list[int] = field(default_factory=list)
    broken: str = ""  # the roster row itself could not be read

    @property
    def attention_reason(self) -> str | None:
        """The attention.csv reason: a suppression shows as its own reason, an ambiguous typo as invalid."""
        if self.status == "send":
            return None
        if self.status == "suppressed":
            return self.suppression_reason
        return "invalid" if self.status == "unrepairable" else self.status


def read_roster(table: Table) -> list[Customer]:
    get = {name: table.col(name) for name in ("customer_id", "name", "company", "email", "owner")}
    out = []
    for _index, line, fields in table.rows:
        val = {k: "" if i is None else fields[i].strip() for k, i in get.items()}
        val["email"] = fields[get["email"]]  # raw: resolve() canonicalizes it
        out.append(Customer(val["customer_id"], val["name"], val["company"], val["email"], val["owner"], line))
    for bad in table.bad:
        out.append(Customer("", "", "", bad.email, "", bad.line, broken=f"{table.path.name} line {bad.line}: {bad.detail}"))
    return out


def _same_person(customer: Customer, row: Row) -> bool:
    """An unusable roster address links to an unusable list row only with the same name (N/A is not a person)."""
    if "@" in customer.normalized:
        return True
    return bool(customer.name) and customer.name.casefold() == row.name.strip().casefold()


def resolve_roster(customers: list[Customer], rows: list[Row], records: dict[str, Record],
                   suppressed: dict[str, str], held: dict[str, str], file: str) -> None:
    """Set each customer's status, canonical address, rows and detail (in place)."""
    unusable: dict[str, list[Row]] = {}
    for row in rows:
        if row.canonical is None:
            unusable.setdefault(row.normalized, []).append(row)
    for c in customers:
        c.normalized, c.canonical, repaired_from, reason, detail = resolve(c.email)
        where = f"{c.customer_id or 'roster line ' + str(c.line)}"
        if c.broken:
            c.status, c.canonical, c.detail = "invalid", None, c.broken
            continue
        if c.canonical is None:
            c.rows = [r.index for r in unusable.get(c.normalized, []) if _same_person(c, r)]
            c.status = "unrepairable" if reason == "ambiguous_typo" else "invalid"
            on_list = f"; list row {', '.join(map(str, c.rows))}" if c.rows else ""
            c.detail = f"{where}: address {c.email.strip()!r} {describe(reason, detail)}{on_list}"
            continue
        rec = records.get(c.canonical)
        dead = [r for r in unusable.get(c.canonical, []) if r.invalid_reason in ("no_mx", "columns", "unreadable")]
        if rec is None and dead:
            c.rows, c.status = [r.index for r in dead], "invalid"
            c.detail = f"{where}: list row {dead[0].index}: {c.canonical} {describe(dead[0].invalid_reason, dead[0].detail)}"
            continue
        if rec is None:
            c.status = "missing_from_list"
            c.detail = f"{where}: {c.canonical} is on the key-customer roster but on no row of {file}"
            continue
        c.rows = list(rec.rows)
        if c.canonical in suppressed:
            c.status, c.suppression_reason = "suppressed", suppressed[c.canonical]
            c.detail = f"{where}: suppressed ({c.suppression_reason}); list row {rec.row.index}"
            continue
        domain = c.canonical.rpartition("@")[2]
        if domain in held:
            c.status = "domain_hold"
            c.detail = f"{where}: mail to {domain} is on hold ({held[domain]})"
            continue
        c.status = "send"
        if repaired_from:
            c.detail = f"roster address repaired from {repaired_from}"


def attention_rows(customers: list[Customer], rows: list[Row], records: dict[str, Record],
                   file: str) -> list[Attention]:
    """attention.csv: roster customers not receiving the send, then key rows of the list no roster entry covers."""
    out = []
    covered: set[int] = set()
    for c in customers:
        covered.update(c.rows)
        if c.status == "send":
            continue
        rec = records.get(c.canonical) if c.canonical else None
        out.append(Attention(
            email=c.canonical or c.email.strip(), name=c.name or (rec.name if rec else ""),
            company=c.company or (rec.company if rec else ""), owner=c.owner or (rec.owner if rec else ""),
            reason=c.attention_reason, detail=c.detail, customer_id=c.customer_id, rows=tuple(c.rows)))
    for row in rows:
        if row.index in covered or not row.key or row.verdict not in ("invalid", "suppressed", "held"):
            continue
        rec = records.get(row.canonical) if row.canonical else None
        if row.verdict == "invalid":
            reason, why = "invalid", f"address {row.raw.strip()!r} {describe(row.invalid_reason, row.detail)}"
        elif row.verdict == "suppressed":
            reason, why = row.suppression_reason, f"suppressed ({row.suppression_reason})"
        else:
            reason, why = "domain_hold", row.detail
        out.append(Attention(
            email=row.canonical or row.raw.strip(), name=rec.name if rec else row.name,
            company=rec.company if rec else row.company, owner=rec.owner if rec else row.owner,
            reason=reason, detail=f"{file} row {row.index}: key tier, not on the roster; {why}", rows=(row.index,)))
    return out
