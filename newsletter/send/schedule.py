"""The monthly schedule: when issues go out, which issue each slot sends, and what ``send-due`` must do now.

The rule lives in ``config.yaml`` ``schedule.rule`` and is read in ``cfg.timezone`` (Asia/Seoul): a small
readable language (``first tuesday 10:00``, ``last friday 14:00``, ``day 5 10:00``, also in Korean:
``첫째 화요일 10:00``, ``매월 5일 10:00``) or a five-field cron expression. Every instant is kept and
compared in UTC; local time is only for reading and printing.

Which issue a slot sends: the slot of month YYYY-MM sends ``content/YYYY-MM/`` (the month of the rule's
date, before any holiday move). An issue's front matter ``send_at:`` replaces its month's rule slots with
that exact time (not moved for holidays: the editor chose it). Quiet hours refuse ``ad: true`` issues.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import heapq
import itertools
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterable, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import sqlalchemy as sa
from croniter import croniter
from croniter.croniter import CroniterError
from sqlalchemy.engine import Engine

from .. import content
from ..config import Config
from ..db import get_engine, sends, utcnow
from ..errors import UserError
from . import lock as db_lock
from .lock import as_utc

WEEKDAY_KO = "월화수목금토일"
MAX_SHIFT = dt.timedelta(days=21)  # longer than any run of Korean holidays plus a weekend
LOCK_NAME = "send-due"
LOOKBACK = dt.timedelta(days=31)  # how far back `schedule` looks for the latest past slot

_ORDINALS = {
    **dict.fromkeys(("first", "1st", "첫째", "첫번째"), 1),
    **dict.fromkeys(("second", "2nd", "둘째", "두번째"), 2),
    **dict.fromkeys(("third", "3rd", "셋째", "세번째"), 3),
    **dict.fromkeys(("fourth", "4th", "넷째", "네번째"), 4),
    **dict.fromkeys(("last", "마지막"), -1),
}
_WEEKDAYS = {
    name: i
    for i, names in enumerate(
        (
            ("monday", "mon", "월요일", "월"),
            ("tuesday", "tue", "tues", "화요일", "화"),
            ("wednesday", "wed", "수요일", "수"),
            ("thursday", "thu", "thur", "thurs", "목요일", "목"),
            ("friday", "fri", "금요일", "금"),
            ("saturday", "sat", "토요일", "토"),
            ("sunday", "sun", "일요일", "일"),
        )
    )
    for name in names
}
_PREFIXES = ("monthly", "every month", "매월", "매달")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_RULE_HELP = (
    "write e.g. 'first tuesday 10:00', 'last friday 14:00', 'day 5 10:00', '첫째 화요일 10:00' "
    "or a cron expression like '0 10 1-7 * 2'"
)


def fmt_local(value: dt.datetime, *, zone_name: bool = True) -> str:
    """``2026-12-01 (화) 10:00 KST``: how a Korean reader writes a date and time."""
    text = f"{value:%Y-%m-%d} ({WEEKDAY_KO[value.weekday()]}) {value:%H:%M}"
    return f"{text} {value.tzname()}" if zone_name else text


def fmt_date(value: dt.date) -> str:
    return f"{value:%Y-%m-%d} ({WEEKDAY_KO[value.weekday()]})"


def zone(cfg: Config) -> ZoneInfo:
    try:
        return ZoneInfo(cfg.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"timezone: unknown time zone {cfg.timezone!r} (e.g. Asia/Seoul)", where=cfg.source) from None


def _parse_time(text: str) -> dt.time | None:
    m = _TIME.match(text)
    if not m or int(m[1]) > 23 or int(m[2]) > 59:
        return None
    return dt.time(int(m[1]), int(m[2]))


# ---------------------------------------------------------------------------------------------- the rule


@dataclass(frozen=True)
class Rule:
    """One slot per month (readable rule) or whatever the cron expression says (``cron``)."""

    text: str
    at: dt.time | None = None
    nth: int = 0  # 1..4, or -1 for the last; with ``weekday``
    weekday: int | None = None  # 0 = Monday
    day: int = 0  # day of the month, -1 = the last day (a day past the month's end means its last day)
    cron: str | None = None

    def month_date(self, year: int, month: int) -> dt.date:
        first = dt.date(year, month, 1)
        last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        if self.weekday is None:
            return last if self.day == -1 else first.replace(day=min(self.day, last.day))
        if self.nth == -1:
            return last - dt.timedelta(days=(last.weekday() - self.weekday) % 7)
        return first + dt.timedelta(days=(self.weekday - first.weekday()) % 7 + 7 * (self.nth - 1))

    def occurrences(self, start: dt.datetime) -> Iterator[dt.datetime]:
        """The rule's times at or after ``start`` (aware, in the rule's zone), in order, without end."""
        if self.cron:
            it = croniter(self.cron, start - dt.timedelta(seconds=1), day_or=False)
            try:
                while True:
                    yield it.get_next(dt.datetime)
            except CroniterError:  # no further match (e.g. "0 10 30 2 *")
                return
        year, month = start.year, start.month
        while True:
            when = dt.datetime.combine(self.month_date(year, month), self.at, tzinfo=start.tzinfo)
            if when >= start:
                yield when
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def parse_rule(text: str, *, where: str | None = None) -> Rule:
    """Read the schedule rule; a clear ``UserError`` with examples when it is neither language nor cron."""
    original = text
    text = " ".join(text.strip().lower().split())
    for prefix in _PREFIXES:
        if text.startswith(prefix + " "):
            text = text[len(prefix) + 1 :]
    tokens = text.split()
    at = _parse_time(tokens[-1]) if tokens else None
    head = tokens[:-1]
    if at is not None:
        if len(head) == 2 and head[0] in _ORDINALS and head[1] in _WEEKDAYS:
            return Rule(original, at, nth=_ORDINALS[head[0]], weekday=_WEEKDAYS[head[1]])
        if head in (["last", "day"], ["마지막", "날"], ["말일"]):
            return Rule(original, at, day=-1)
        day = None
        if len(head) == 2 and head[0] == "day" and head[1].isdigit():
            day = int(head[1])
        elif len(head) == 1 and re.fullmatch(r"\d{1,2}일", head[0]):
            day = int(head[0][:-1])
        if day is not None and 1 <= day <= 31:
            return Rule(original, at, day=day)
    expr = original.strip()
    if len(expr.split()) == 5 and croniter.is_valid(expr):
        return Rule(original, cron=expr)
    raise UserError(f"schedule.rule: cannot read {original!r}; {_RULE_HELP}", where=where)


@dataclass(frozen=True)
class QuietHours:
    """Local times during which an ad issue must not go out; may wrap midnight (``21:00-08:00``)."""

    start: dt.time
    end: dt.time

    def __contains__(self, when: dt.datetime) -> bool:
        t = when.time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse_quiet_hours(text: str | None, *, where: str | None = None) -> QuietHours | None:
    if text is None or not str(text).strip():
        return None
    parts = re.split(r"\s*[-~–]\s*", str(text).strip())
    times = [_parse_time(p) for p in parts] if len(parts) == 2 else [None]
    if None in times or times[0] == times[1]:
        raise UserError(
            f"schedule.quiet_hours: cannot read {text!r}; write 'HH:MM-HH:MM' (e.g. '21:00-08:00') or null to turn it off",
            where=where,
        )
    return QuietHours(*times)


@lru_cache(maxsize=1)
def korean_holidays() -> holidays.HolidayBase:
    """Korean public holidays (설날, 추석, 대체공휴일 …) with Korean names; years are added as asked."""
    return holidays.KR(language="ko")


def next_working_day(day: dt.date) -> tuple[dt.date, str]:
    """The first day from ``day`` on that is neither a weekend nor a Korean public holiday, and why it moved."""
    kr = korean_holidays()
    reasons = []
    while day.weekday() >= 5 or day in kr:
        reasons.append(f"{fmt_date(day)} {kr.get(day) or WEEKDAY_KO[day.weekday()] + '요일'}")
        day += dt.timedelta(days=1)
    return day, ", ".join(reasons)


# ------------------------------------------------------------------------------------------------ slots


@dataclass(frozen=True)
class Slot:
    at: dt.datetime  # UTC: when it goes out
    local: dt.datetime  # the same instant in cfg.timezone
    month: str  # "2026-12": the month whose issue it sends
    moved_from: dt.datetime | None = None  # the rule's time before a holiday move
    moved_because: str = ""
    issue: str | None = None  # set when the slot comes from an issue's send_at


def _rule_slots(rule: Rule, start: dt.datetime, skip_holidays: bool) -> Iterator[Slot]:
    """The rule's slots at or after ``start`` (local, aware), in order, moved off holidays when asked.

    A move only goes forward and by less than MAX_SHIFT, so a slot is final once the rule's own
    times have passed it; a small heap puts moved slots back in order and drops doubles.
    """
    pending: list[tuple[dt.datetime, int, Slot]] = []
    seen: set[dt.datetime] = set()
    counter = itertools.count()
    for nominal in rule.occurrences(start - MAX_SHIFT):
        while pending and pending[0][0] <= nominal:
            yield heapq.heappop(pending)[2]
        local, because = nominal, ""
        if skip_holidays:
            day, because = next_working_day(nominal.date())
            local = dt.datetime.combine(day, nominal.timetz())
        if local < start or local in seen:
            continue
        seen.add(local)
        slot = Slot(
            at=local.astimezone(dt.timezone.utc),
            local=local,
            month=f"{nominal:%Y-%m}",
            moved_from=nominal if local != nominal else None,
            moved_because=because,
        )
        heapq.heappush(pending, (local, next(counter), slot))
    while pending:
        yield heapq.heappop(pending)[2]


def month_slot(cfg: Config, month: str) -> Slot | None:
    """The rule's slot for month ``YYYY-MM`` (after any holiday move), or None when ``schedule.rule``
    is null or never fires that month. ``newsletter new`` dates a new issue with it."""
    rule_text = (cfg.schedule.rule or "").strip()
    if not rule_text:
        return None
    rule = parse_rule(rule_text, where=cfg.source)
    year, mon = (int(x) for x in month.split("-"))
    start = dt.datetime(year, mon, 1, tzinfo=zone(cfg))
    horizon = start + dt.timedelta(days=31) + MAX_SHIFT   # a slot of the month moved as far as it can go
    for slot in _rule_slots(rule, start, cfg.schedule.skip_holidays):
        if slot.local >= horizon:
            return None
        if slot.month == month:
            return slot
    return None


# ----------------------------------------------------------------------------------------------- issues


@dataclass(frozen=True)
class IssueInfo:
    """What the schedule needs to know of an issue."""

    id: str
    send_at: dt.datetime | None = None  # UTC
    ad: bool = False
    problem: str | None = None  # why it cannot go out as it is (first problem the content stage found)


def _send_at(value: Any, tz: ZoneInfo) -> dt.datetime | None:
    """Front matter ``send_at``: a local date-time (``2026-12-03 10:00``) or ISO with an offset."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"send_at: cannot read {value!r}; write e.g. 2026-12-03 10:00") from None
    if not isinstance(value, dt.datetime):  # a bare date: the editor must say the time
        raise ValueError(f"send_at: {value!r} needs a time, e.g. {value} 10:00")
    return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(dt.timezone.utc)


def read_issues(cfg: Config) -> dict[str, IssueInfo]:
    """Every issue of ``content/`` with its ``send_at``: cheap (front matter only), for placing slots.

    Unreadable front matter or a bad ``send_at`` becomes the issue's ``problem``, so one draft in
    progress does not stop the schedule of the others.
    """
    import frontmatter

    tz = zone(cfg)
    found: dict[str, IssueInfo] = {}
    for issue_id in content.list_issues(cfg):
        path = content.content_root(cfg) / issue_id / content.ISSUE_FILE
        try:
            found[issue_id] = IssueInfo(issue_id, _send_at(frontmatter.load(path).metadata.get("send_at"), tz))
        except Exception as exc:  # YAML syntax (any of the parser's errors) or send_at
            found[issue_id] = IssueInfo(issue_id, problem=f"{content.display_path(cfg, path)}: {exc}")
    return found


def check_issue(cfg: Config, info: IssueInfo) -> IssueInfo:
    """Read the issue through the content stage for its ``ad`` flag and its first problem, if any."""
    if info.problem:
        return info
    issue, problems = content.read_issue(cfg, info.id)
    first = problems[0] if problems else None
    problem = f"{content.display_path(cfg, first.file)}: {first.field}: {first.message}" if first else None
    return dataclasses.replace(info, ad=issue.ad, problem=problem)


def slots(cfg: Config, issues: dict[str, IssueInfo], start: dt.datetime) -> Iterator[Slot]:
    """All slots at or after ``start`` (UTC) in order: the rule's, except months whose issue has send_at, plus those."""
    tz = zone(cfg)
    overridden = {i.id for i in issues.values() if i.send_at}
    extra = sorted(
        (
            Slot(at=i.send_at, local=i.send_at.astimezone(tz), month=f"{i.send_at.astimezone(tz):%Y-%m}", issue=i.id)
            for i in issues.values()
            if i.send_at and i.send_at >= start
        ),
        key=lambda s: s.at,
    )
    rule_text = (cfg.schedule.rule or "").strip()
    ruled: Iterable[Slot] = ()
    if rule_text:
        rule = parse_rule(rule_text, where=cfg.source)
        ruled = (
            s
            for s in _rule_slots(rule, start.astimezone(tz), cfg.schedule.skip_holidays)
            if s.month not in overridden
        )
    return heapq.merge(ruled, extra, key=lambda s: s.at)


# -------------------------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class SendRecord:
    """What the ledger says of an issue's real sends."""

    done_id: int | None = None
    done_at: dt.datetime | None = None
    open_id: int | None = None
    paused: str | None = None  # the open send paused itself (rejection spike): a person must look first
    cancelled: bool = False


def send_records(engine: Engine, issue_ids: Iterable[str]) -> dict[str, SendRecord]:
    ids = sorted(set(issue_ids))
    if not ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(sends.c.id, sends.c.issue, sends.c.status, sends.c.finished_at, sends.c.note)
            .where(sends.c.kind == "real", sends.c.issue.in_(ids))
            .order_by(sends.c.id)
        ).all()
    found: dict[str, dict] = collections.defaultdict(dict)
    for row in rows:
        rec = found[row.issue]
        if row.status == "done":
            rec.setdefault("done_id", row.id)
            rec.setdefault("done_at", as_utc(row.finished_at))
        elif row.status == "cancelled":
            rec["cancelled"] = True
        else:
            rec["open_id"] = row.id
            rec["paused"] = row.note if (row.note or "").startswith("paused:") else None
    return {issue: SendRecord(**rec) for issue, rec in found.items()}


@dataclass(frozen=True)
class Entry:
    """One slot with the issue it sends and its state.

    States: sent, due, upcoming, refused: quiet hours, missed (later than catch_up_hours: send by hand),
    cancelled (a real send was cancelled: send-due leaves it alone), paused (the send paused itself:
    send-due reports it and leaves it to a person), no issue yet, error (due, but the issue has a
    problem; an upcoming one says 'not ready' in its note).
    """

    slot: Slot
    issue: str | None
    ad: bool
    state: str
    note: str = ""
    send_id: int | None = None  # the completed send (sent) or the open one a due slot resumes

    def as_json(self) -> dict:
        s = self.slot
        return {
            "at": s.at.isoformat(),
            "local": s.local.isoformat(),
            "when": fmt_local(s.local),
            "month": s.month,
            "issue": self.issue,
            "ad": self.ad,
            "state": self.state,
            "note": self.note,
            "send_id": self.send_id,
            "moved_from": s.moved_from.isoformat() if s.moved_from else None,
            "moved_because": s.moved_because or None,
            "from_send_at": s.issue is not None,
        }


@dataclass
class Plan:
    now: dt.datetime
    rule: str
    timezone: str
    quiet_hours: str | None
    skip_holidays: bool
    entries: list[Entry] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "now": self.now.isoformat(),
            "rule": self.rule,
            "timezone": self.timezone,
            "quiet_hours": self.quiet_hours,
            "skip_holidays": self.skip_holidays,
            "slots": [e.as_json() for e in self.entries],
        }


def refusal(issue: str, slot: Slot, quiet: QuietHours) -> str:
    """The one message an operator reads when an ad issue's slot falls in quiet hours."""
    return (
        f"issue {issue} is an ad (ad: true) and its slot {fmt_local(slot.local)} is inside quiet hours {quiet}: "
        "refused (night-time ads need separate consent). Move the slot (schedule.rule, or send_at in the issue) "
        "or set schedule.quiet_hours: null"
    )


def _entry(slot: Slot, info: IssueInfo | None, rec: SendRecord, *, now, catch_up, quiet) -> Entry:
    if info is None:
        return Entry(slot, None, False, "no issue yet")
    base = dict(slot=slot, issue=info.id, ad=info.ad)
    if rec.done_id is not None:
        when = f" {fmt_local(rec.done_at.astimezone(slot.local.tzinfo))}" if rec.done_at else ""
        return Entry(**base, state="sent", note=f"send #{rec.done_id} finished{when}", send_id=rec.done_id)
    if rec.cancelled and rec.open_id is None:
        return Entry(**base, state="cancelled", note=f"a send was cancelled; send it by hand: newsletter send {info.id}")
    if rec.paused:
        note = f"send #{rec.open_id} {rec.paused}; fix the cause, then: newsletter send {info.id}"
        return Entry(**base, state="paused", note=note, send_id=rec.open_id)
    if info.ad and quiet is not None and slot.local in quiet:
        return Entry(**base, state="refused: quiet hours", note=refusal(info.id, slot, quiet))
    if slot.at > now:
        note = f"not ready: {info.problem}" if info.problem else f"resumes send #{rec.open_id}" if rec.open_id else ""
        return Entry(**base, state="upcoming", note=note, send_id=rec.open_id)
    if now - slot.at > catch_up:
        hours = f"{catch_up.total_seconds() / 3600:g}"
        note = f"over {hours} h late: send by hand (newsletter send {info.id})"
        return Entry(**base, state="missed", note=note, send_id=rec.open_id)
    if info.problem:
        return Entry(**base, state="error", note=info.problem)
    return Entry(**base, state="due", note=f"resumes send #{rec.open_id}" if rec.open_id else "", send_id=rec.open_id)


def plan(cfg: Config, *, now: dt.datetime | None = None, count: int = 6, engine: Engine | None = None) -> Plan:
    """The next ``count`` slots, after every past slot still within the catch-up window and the latest
    past one (within a month), so a reader sees what just went out or was missed."""
    now = (now or utcnow()).astimezone(dt.timezone.utc)
    quiet = parse_quiet_hours(cfg.schedule.quiet_hours, where=cfg.source)
    catch_up = dt.timedelta(hours=cfg.schedule.catch_up_hours)
    issues = read_issues(cfg)
    past: list[Slot] = []
    future: list[Slot] = []
    for slot in slots(cfg, issues, now - max(catch_up, LOOKBACK)):
        if slot.at <= now:
            past.append(slot)
        elif len(future) < count:
            future.append(slot)
        else:
            break
    chosen = [s for s in past[:-1] if now - s.at <= catch_up] + past[-1:] + future

    checked: dict[str, IssueInfo] = {}

    def issue_of(slot: Slot) -> IssueInfo | None:
        info = issues.get(slot.issue or slot.month)
        if info is not None and info.id not in checked:
            checked[info.id] = check_issue(cfg, info)
        return checked[info.id] if info else None

    infos = [issue_of(s) for s in chosen]
    records = send_records(engine or get_engine(cfg), (i.id for i in infos if i))
    entries = [
        _entry(s, i, records.get(i.id, SendRecord()) if i else SendRecord(), now=now, catch_up=catch_up, quiet=quiet)
        for s, i in zip(chosen, infos)
    ]
    return Plan(now, cfg.schedule.rule, cfg.timezone, str(quiet) if quiet else None, cfg.schedule.skip_holidays, entries)


def parse_now(text: str | None, cfg: Config) -> dt.datetime | None:
    """``--now``: an ISO date-time; without an offset it is local time in cfg.timezone."""
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"--now: cannot read {text!r}; write e.g. 2026-12-01T10:05 or 2026-12-01T01:05Z") from None
    return (value if value.tzinfo else value.replace(tzinfo=zone(cfg))).astimezone(dt.timezone.utc)


# ------------------------------------------------------------------------------------------- send-due


@dataclass
class DueOutcome:
    issue: str
    when: str  # the slot, local
    state: str  # sent | incomplete (paused, interrupted, rows left) | paused (left to a person) | refused | failed
    message: str = ""
    result: Any = None  # the sender's SendResult


@dataclass
class DueResult:
    now: dt.datetime
    ran: bool  # False: another send-due held the lock and does the work
    holder: str | None = None
    outcomes: list[DueOutcome] = field(default_factory=list)
    next_slot: Entry | None = None

    @property
    def ok(self) -> bool:
        return all(o.state == "sent" for o in self.outcomes)

    def as_json(self) -> dict:
        def result(value):
            return value.as_dict() if hasattr(value, "as_dict") else value

        return {
            "now": self.now.isoformat(),
            "ran": self.ran,
            "lock_holder": self.holder,
            "ok": self.ok,
            "outcomes": [  # not dataclasses.asdict: it would deep-copy the sender's whole audience snapshot
                {"issue": o.issue, "when": o.when, "state": o.state, "message": o.message, "result": result(o.result)}
                for o in self.outcomes
            ],
            "next": self.next_slot.as_json() if self.next_slot else None,
        }


def _sender() -> Callable[..., Any]:
    from .runner import send_issue  # late, so the runner may use the schedule without an import cycle

    return send_issue


def _run(cfg: Config, entry: Entry, *, backend, engine, progress) -> DueOutcome:
    when = fmt_local(entry.slot.local)
    if entry.state != "due":  # refused, paused or error: one clear line, nothing sent
        state = {"refused: quiet hours": "refused", "paused": "paused"}.get(entry.state, "failed")
        return DueOutcome(entry.issue, when, state, entry.note)
    try:
        result = _sender()(
            cfg, entry.issue, backend=backend, engine=engine, scheduled_for=entry.slot.at, progress=progress
        )
    except UserError as exc:
        return DueOutcome(entry.issue, when, "failed", str(exc))
    if getattr(result, "done", True):
        return DueOutcome(entry.issue, when, "sent", entry.note, result)
    why = result.paused or ("interrupted" if result.interrupted else "; ".join(result.notes) or "rows left")
    return DueOutcome(entry.issue, when, "incomplete", f"not finished ({why}); the next send-due resumes it", result)


def send_due(
    cfg: Config,
    *,
    now: dt.datetime | None = None,
    backend: str | None = None,
    engine: Engine | None = None,
    progress: bool = True,
    lock_ttl: float = db_lock.DEFAULT_TTL,
) -> DueResult:
    """Send every due slot's issue once, under the database lock; refuse ad issues in quiet hours.

    Due-ness is read only after the lock is held, so a second run that starts while the first sends
    (or just after it finished) finds the issue sent and does nothing.
    """
    engine = engine or get_engine(cfg)
    now = (now or utcnow()).astimezone(dt.timezone.utc)
    catch_up = dt.timedelta(hours=cfg.schedule.catch_up_hours)
    try:
        with db_lock.held(engine, LOCK_NAME, ttl=lock_ttl):
            current = plan(cfg, now=now, count=1, engine=engine)
            acting = {}  # issue -> its first actionable slot in the window
            for e in current.entries:
                if e.state in ("due", "error", "paused", "refused: quiet hours") and now - catch_up <= e.slot.at <= now:
                    acting.setdefault(e.issue, e)
            outcomes = [_run(cfg, e, backend=backend, engine=engine, progress=progress) for e in acting.values()]
            upcoming = [e for e in current.entries if e.slot.at > now]
            return DueResult(now, True, outcomes=outcomes, next_slot=upcoming[0] if upcoming else None)
    except db_lock.LockBusy as busy:
        return DueResult(now, False, holder=busy.holder)
