"""Run a send: plan (hygiene, who gets what) ▸ ledger snapshot ▸ batches through a backend ▸ result.

``send_issue`` is the one entry point (the CLI and ``send-due`` call it); ``plan_send`` and
``execute`` are its two halves, so the CLI can show the audience before anything goes out.
"""

from __future__ import annotations

import signal
import threading
from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa

from ..config import Config
from ..db import deliveries, events, get_engine, sends
from ..errors import UserError
from ..render import PRIMARY, load_built
from ..track.tokens import Signer
from . import ledger as L
from .backends.base import Job, get_backend
from .message import prepare

RESEND_TARGETS = ("non-openers",)


@dataclass
class Plan:
    """Who this run will send to, decided before anything goes out."""

    issue: str
    kind: str                                  # real | test | resend
    resume_id: int | None = None               # an unfinished send this run continues
    rows: list[dict] = field(default_factory=list)   # the audience snapshot of a new send
    audience: int = 0                          # the clean audience today
    already: int = 0                           # of whom already have a delivery row for the issue
    by_variant: dict[str, int] = field(default_factory=dict)
    by_tier: dict[str, int] = field(default_factory=dict)
    attention: list[dict] = field(default_factory=list)
    nothing: str | None = None                 # why there is nothing to send

    @property
    def to_send(self) -> int:
        return sum(self.by_variant.values())


@dataclass
class SendResult:
    issue: str
    kind: str
    backend: str
    plan: Plan
    send_id: int | None = None
    dry_run: bool = False
    counts: dict[str, int] = field(default_factory=dict)   # ledger states of the whole send
    sent_now: int = 0                                      # rows this run marked sent
    recovered: int = 0                                     # in-flight rows of a dead run found sent (outbox)
    unknown: list[str] = field(default_factory=list)       # addresses whose outcome is unknown
    failed: list[tuple[str, str]] = field(default_factory=list)
    paused: str | None = None
    interrupted: bool = False
    done: bool = False
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "issue": self.issue, "kind": self.kind, "backend": self.backend, "send_id": self.send_id,
            "dry_run": self.dry_run, "done": self.done, "counts": self.counts, "sent_now": self.sent_now,
            "recovered": self.recovered, "unknown": self.unknown,
            "failed": [{"address": a, "error": e} for a, e in self.failed],
            "paused": self.paused, "interrupted": self.interrupted, "notes": self.notes,
            "plan": {
                "to_send": self.plan.to_send, "audience": self.plan.audience, "already": self.plan.already,
                "resume": self.plan.resume_id, "by_variant": self.plan.by_variant, "by_tier": self.plan.by_tier,
                "attention": self.plan.attention, "nothing": self.plan.nothing,
            },
        }


def _row(recipient, tier_variant: dict[str, str], issue: str) -> dict:
    tier = recipient.tier or "regular"
    return {
        "address": recipient.email, "name": recipient.name or "", "company": recipient.company or "",
        "tier": tier, "owner": recipient.owner or "", "key": bool(recipient.key),
        "variant": tier_variant.get(tier, PRIMARY),  # as render's BuiltIssue.for_tier: unknown tier -> primary
    }


def _pending_counts(engine, send_id: int) -> tuple[dict, dict]:
    q = (
        sa.select(deliveries.c.variant, deliveries.c.tier, sa.func.count())
        .where(deliveries.c.send_id == send_id, deliveries.c.state.in_(("pending", "sending")))
        .group_by(deliveries.c.variant, deliveries.c.tier)
    )
    by_v, by_t = Counter(), Counter()
    with engine.connect() as conn:
        for v, t, n in conn.execute(q):
            by_v[v] += n
            by_t[t] += n
    return dict(by_v), dict(by_t)


def _openers(engine, issue: str) -> set[str]:
    """Addresses with a human open of the issue (machine opens — Apple MPP, scanners — do not count)."""
    q = (
        sa.select(deliveries.c.address)
        .join(events, events.c.delivery_id == deliveries.c.id)
        .where(deliveries.c.issue == issue, events.c.kind == "open", events.c.machine.is_(False))
    )
    q2 = sa.select(events.c.address).where(events.c.issue == issue, events.c.kind == "open", events.c.machine.is_(False))
    with engine.connect() as conn:
        return set(conn.scalars(q)) | {a for a in conn.scalars(q2) if a}


def _received(engine, issue: str) -> set[str]:
    q = (
        sa.select(deliveries.c.address)
        .join(sends, sends.c.id == deliveries.c.send_id)
        .where(deliveries.c.issue == issue, sends.c.kind == "real", deliveries.c.state == "sent")
    )
    with engine.connect() as conn:
        return set(conn.scalars(q))


def _hygiene(cfg: Config, engine, progress: bool):
    try:
        from ..lists import clean_lists
    except ImportError:
        raise UserError("list hygiene (newsletter.lists) is not available in this installation") from None
    result = clean_lists(cfg, engine=engine, progress=progress)
    return result.audience, result.attention


def plan_send(
    cfg: Config,
    issue_id: str,
    *,
    engine=None,
    test_address: str | None = None,
    resend_to: str | None = None,
    audience=None,
    attention=None,
    progress: bool = True,
) -> Plan:
    """Decide who gets the issue in this run; runs list hygiene unless an audience is given."""
    engine = engine or get_engine(cfg)
    tier_variant = load_built(cfg, issue_id).tier_variant

    if test_address:
        address = test_address.strip().lower()
        if "@" not in address:
            raise UserError(f"--test {test_address!r} is not an e-mail address")
        tier = "regular" if "regular" in tier_variant else next(iter(tier_variant))
        row = {"address": address, "name": "", "company": "", "tier": tier, "owner": "", "key": False,
               "variant": tier_variant[tier]}
        return Plan(issue_id, "test", rows=[row], audience=1, by_variant={row["variant"]: 1}, by_tier={tier: 1})

    if resend_to is not None and resend_to not in RESEND_TARGETS:
        raise UserError(f"--resend-to {resend_to!r}: expected one of {', '.join(RESEND_TARGETS)}")
    kind = "resend" if resend_to else "real"

    if audience is None:
        audience, attention = _hygiene(cfg, engine, progress)
    attention_rows = [
        {"email": a.email, "name": a.name, "company": a.company, "owner": a.owner, "reason": a.reason, "detail": a.detail}
        for a in (attention or [])
    ]
    plan = Plan(issue_id, kind, audience=len(audience), attention=attention_rows)

    unfinished = L.open_send(engine, issue_id, kind)
    if unfinished is not None:
        plan.resume_id = unfinished.id
        plan.by_variant, plan.by_tier = _pending_counts(engine, unfinished.id)
        if not plan.by_variant:
            plan.nothing = f"send {unfinished.id} has no pending rows left"
        return plan

    if kind == "real":
        had = L.addresses_in(engine, issue_id, ("real",))
        plan.already = sum(1 for r in audience if r.email in had)
        candidates = [r for r in audience if r.email not in had]
        if not candidates:
            plan.nothing = "everyone in the audience already has this issue" if had else "the audience is empty"
    else:
        if L.sends_of(engine, issue_id, "resend"):
            plan.nothing = "the second copy to non-openers was already sent"
            return plan
        got = _received(engine, issue_id)
        if not got:
            plan.nothing = f"issue {issue_id} has not been sent yet"
            return plan
        opened = _openers(engine, issue_id)
        candidates = [r for r in audience if r.email in got and r.email not in opened]
        plan.already = len(got) - len(candidates)
        if not candidates:
            plan.nothing = "every recipient opened the issue"

    plan.rows = [_row(r, tier_variant, issue_id) for r in candidates]
    plan.by_variant = dict(Counter(r["variant"] for r in plan.rows))
    plan.by_tier = dict(Counter(r["tier"] for r in plan.rows))
    return plan


class _StopOnSigint:
    """First Ctrl-C: finish the request in flight, leave the rest pending. Second Ctrl-C: stop now."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self.fired = False
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.fired:
            raise KeyboardInterrupt
        self.fired = True
        self.stop.set()

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _progress(enabled: bool, total: int):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..cli.common import err_console

    return Progress(
        TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=err_console, disable=not enabled or total < 1, transient=True,
    )


def _send_for(engine, plan: Plan, backend_name: str, scheduled_for) -> int | None:
    """The ledger send this run works on: the unfinished one, a new snapshot, or the last one."""
    if plan.resume_id is not None:
        found = L.get_send(engine, plan.resume_id)
        if found.backend != backend_name:
            raise UserError(f"send {found.id} of {plan.issue} was started with --backend {found.backend}; "
                            f"continue it with the same backend")
        L.set_send(engine, found.id, note=None)  # a pause reason no longer holds once someone resumes
        return found.id
    if plan.rows:
        return L.create_send(engine, issue=plan.issue, kind=plan.kind, backend=backend_name, rows=plan.rows,
                             scheduled_for=scheduled_for)
    last = L.sends_of(engine, plan.issue, plan.kind)
    return max(last) if last else None


PAGE_ROWS = 10_000  # pending rows read per query: one SELECT per ten SendGrid requests, not one each


def _batches(job: Job, variant: str, size: int):
    """The pending rows of one variant in id order, in batches of ``size``, read a page at a time.

    A cursor (not the state alone) moves the run forward, so rows a failed attempt put back to
    ``pending`` wait for the next run instead of looping; a page read early is safe because every
    claim re-checks ``state = 'pending'`` (``Ledger.sending``)."""
    cursor, page_size = 0, max(size, PAGE_ROWS // size * size)
    while not job.stop.is_set() and job.paused is None:
        page = L.pending_batch(job.engine, job.send_id, variant, cursor, page_size)
        if not page:
            return
        cursor = page[-1].id
        for i in range(0, len(page), size):
            if job.stop.is_set() or job.paused is not None:
                return
            yield page[i : i + size]


def _push(job: Job, be, progress: bool) -> bool:
    """Every pending row through the backend, one variant and batch at a time. True if Ctrl-C came."""
    engine, send_id = job.engine, job.send_id
    total = L.counts(engine, send_id)["pending"]
    be.open(job)
    try:
        with _StopOnSigint(job.stop) as sigint, _progress(progress, total) as bar:
            task = bar.add_task("send", total=total)
            for variant in L.variants_pending(engine, send_id):
                for rows in _batches(job, variant, be.batch_size):
                    be.send_batch(job, rows)
                    bar.advance(task, len(rows))
                if job.stop.is_set() or job.paused:
                    break
            be.flush(job)
        return sigint.fired
    finally:
        be.close()
        job.ledger.close()


def _failed(engine, send_id: int) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(deliveries.c.address, deliveries.c.error)
            .where(deliveries.c.send_id == send_id, deliveries.c.state == "failed")
            .order_by(deliveries.c.id)
        )
        return [(a, e or "") for a, e in rows]


def execute(
    cfg: Config,
    plan: Plan,
    *,
    backend=None,
    engine=None,
    scheduled_for=None,
    progress: bool = True,
    retry_unknown: bool = False,
) -> SendResult:
    """Create (or resume) the send in the ledger and push its pending rows through the backend."""
    engine = engine or get_engine(cfg)
    be = backend if backend is not None and not isinstance(backend, str) else get_backend(cfg, backend)
    result = SendResult(plan.issue, plan.kind, be.name, plan)
    if plan.nothing and not retry_unknown:
        result.notes.append(plan.nothing)
        result.done = True  # nothing left to do for this issue
        return result

    lock = f"send:{plan.issue}:{plan.kind}"
    L.acquire(engine, lock)
    try:
        signer = Signer.for_config(cfg, allow_local=be.name == "outbox")
        prep = prepare(cfg, plan.issue, signer, test=plan.kind == "test")
        send_id = _send_for(engine, plan, be.name, scheduled_for)
        if send_id is None:
            result.notes.append(plan.nothing or "nothing to send")
            return result
        result.send_id = send_id
        job = Job(cfg, send_id, plan.kind, prep, signer, L.Ledger(engine, send_id), engine, scheduled_for)

        result.recovered, unknown_now = job.ledger.resolve_in_flight(
            (lambda d: be.went_out(job, d)) if be.name == "outbox" else None
        )
        if unknown_now:
            result.notes.append(f"{unknown_now} messages were in flight when the previous run stopped: marked unknown")
        if retry_unknown:
            again = job.ledger.retry_unknown()
            result.notes.append(f"{again} unknown rows put back to pending on request")
            L.set_send(engine, send_id, status="open", finished_at=None)

        before = L.counts(engine, send_id)["sent"]
        result.interrupted = _push(job, be, progress)

        result.counts = L.counts(engine, send_id)
        result.sent_now = result.counts["sent"] - before
        result.paused = job.paused
        result.notes.extend(job.notes)
        result.unknown = [d.address for d in L.rows_in_state(engine, send_id, "unknown")]
        result.failed = _failed(engine, send_id)
        if job.paused:
            L.set_send(engine, send_id, note=f"paused: {job.paused}")
        elif result.counts["pending"] == 0 and result.counts["sending"] == 0:
            L.finish_send(engine, send_id)
            result.done = True
        return result
    finally:
        L.release_lock(engine, lock)


def send_issue(
    cfg: Config,
    issue_id: str,
    *,
    backend=None,
    engine=None,
    dry_run: bool = False,
    test_address: str | None = None,
    resend_to: str | None = None,
    scheduled_for=None,
    progress: bool = True,
    retry_unknown: bool = False,
) -> SendResult:
    """Send an issue to its audience exactly once each (or continue an interrupted send)."""
    engine = engine or get_engine(cfg)
    plan = plan_send(cfg, issue_id, engine=engine, test_address=test_address, resend_to=resend_to, progress=progress)
    if dry_run:
        name = backend if isinstance(backend, str) else getattr(backend, "name", None) or cfg.send.backend
        return SendResult(issue_id, plan.kind, name, plan, dry_run=True, notes=[plan.nothing] if plan.nothing else [])
    return execute(cfg, plan, backend=backend, engine=engine, scheduled_for=scheduled_for, progress=progress,
                   retry_unknown=retry_unknown)
