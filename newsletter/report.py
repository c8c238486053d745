"""Per-issue figures from the database: who got the issue, who read it, what they clicked, who went quiet.

Everything is counted with SQL aggregates (GROUP BY) so a send with hundreds of thousands of deliveries
never comes into Python row by row; Python only folds the handful of grouped rows into an ``IssueReport``.

Definitions (see docs/reports.md):

* Only *real* sends count (``sends.kind = 'real'``); test sends never show up.
* **sent** = deliveries in state ``sent`` (**failed**: refused at send time); **bounced** = sent deliveries with a bounce (``bounce``/``dropped``
  event, or a permanent/temporary row in ``bounces`` for that send and address); **delivered** = sent − bounced.
* **opened** = deliveries with a *human* open or a click (a click proves the e-mail was read even when the
  images were blocked). Machine opens (Apple Mail Privacy Protection, image proxies: ``events.machine``)
  are reported on their own and never count as engagement.
* **clicks** = human click events (total) and **clickers** = deliveries with at least one. Machine clicks
  (link scanners: ``events.machine`` on a click) are reported on their own as **machine clicks** and,
  like machine opens, never count as engagement anywhere (opened, clicks, articles, companies, inactive).
* **unsubscribed**, **complaints** = deliveries with such an event (complaints also from ``bounces``
  rows of kind ``complaint``, e.g. ARF reports).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from . import db
from .config import Config
from .content import TIERS, article_url
from .errors import UserError

BOUNCE_KINDS = ("permanent", "temporary")
DEFAULT_DAYS = 7


# ---------------------------------------------------------------------------------------------------
# The report as plain data
# ---------------------------------------------------------------------------------------------------


@dataclass
class Figures:
    """The counts for one slice of the audience (everyone, one tier, one variant)."""

    recipients: int = 0
    sent: int = 0            # accepted by the server or provider
    failed: int = 0          # refused at send time (e.g. an SMTP 5xx at RCPT); still pending/unknown = the rest
    bounced: int = 0
    delivered: int = 0
    opened: int = 0          # unique human opens (a click counts as an open)
    machine_opens: int = 0   # deliveries with a machine open (never engagement)
    clicks: int = 0          # human click events
    machine_clicks: int = 0  # click events by link scanners (never engagement)
    clickers: int = 0        # deliveries with at least one click
    unsubscribed: int = 0
    complaints: int = 0

    @property
    def open_rate(self) -> float:
        return self.opened / self.delivered if self.delivered else 0.0

    @property
    def click_rate(self) -> float:
        return self.clickers / self.delivered if self.delivered else 0.0

    def add(self, other: "Figures") -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["open_rate"] = round(self.open_rate, 4)
        d["click_rate"] = round(self.click_rate, 4)
        return d


@dataclass
class ArticleClicks:
    slug: str
    title: str
    url: str
    clicks: int
    clickers: int
    visits: int = 0          # archive visits attributed to sales reps (?ref=)


@dataclass
class LinkClicks:
    url: str
    clicks: int
    clickers: int


@dataclass
class RepVisits:
    rep: str
    visits: int
    articles: dict[str, int] = field(default_factory=dict)  # slug ("" = the issue page) -> visits


@dataclass
class DayOpens:
    day: int                 # 1 = the first 24 hours after the send started
    opened: int              # recipients whose first human open (or click) fell on that day
    machine_opens: int       # machine open events that day
    cumulative_rate: float   # share of delivered recipients who had opened by the end of that day


@dataclass
class InactiveAccount:
    address: str
    name: str
    company: str
    owner: str
    received: int            # issues delivered in the window (of ``window`` issues)
    last_opened_issue: str | None
    last_opened_at: str | None


@dataclass
class CompanyEngagement:
    company: str
    addresses: int
    key: bool
    delivered: int
    opened: int              # addresses that opened (human)
    clicks: int
    visits: int              # archive visits: clicks into the web archive plus attributed visits


@dataclass
class IssueReport:
    issue: str
    title: str
    sent_at: str | None
    send_ids: list[int]
    overall: Figures
    tiers: dict[str, Figures]
    variants: dict[str, Figures]
    opens_by_day: list[DayOpens]
    opens_after_window: int
    top_articles: list[ArticleClicks]
    other_links: list[LinkClicks]
    rep_visits: list[RepVisits]
    inactive_window: list[str]                      # the issues looked at, oldest first
    inactive_key_accounts: dict[str, list[InactiveAccount]]  # owner -> accounts
    companies: list[CompanyEngagement]

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["overall"] = self.overall.as_dict()
        d["tiers"] = {k: v.as_dict() for k, v in self.tiers.items()}
        d["variants"] = {k: v.as_dict() for k, v in self.variants.items()}
        return d


# ---------------------------------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------------------------------

D, E, S, B = db.deliveries, db.events, db.sends, db.bounces


def _real_send_ids(issues) -> sa.Select:
    return sa.select(S.c.id).where(S.c.issue.in_(issues), S.c.kind == "real")


def _scope(issues):
    """Deliveries of the real sends of these issues."""
    return sa.and_(D.c.issue.in_(issues), D.c.send_id.in_(_real_send_ids(issues)))


def _resolved_events(issues, kinds: tuple[str, ...] | None = None) -> sa.Subquery:
    """Every event of these issues (of these kinds) resolved to a delivery id, ``bounces`` rows as events.

    Events normally carry ``delivery_id``; webhook events without one are matched on (issue, address);
    rows of ``bounces`` are matched on (send, address), or (issue, address) when the send is unknown.
    """
    of_kind = E.c.kind.in_(kinds) if kinds else sa.true()
    no_url = sa.cast(sa.null(), sa.Text)
    not_machine = sa.literal(False, sa.Boolean)
    b_kind = sa.case((B.c.kind == "complaint", "complaint"), else_="bounce")
    b_filter = B.c.kind.in_(BOUNCE_KINDS + ("complaint",))
    by_id = (
        sa.select(D.c.id.label("delivery_id"), E.c.kind, E.c.machine, E.c.at, E.c.url)
        .select_from(E.join(D, E.c.delivery_id == D.c.id))
        .where(_scope(issues), of_kind)
    )
    by_address = (
        sa.select(D.c.id, E.c.kind, E.c.machine, E.c.at, E.c.url)
        .select_from(E.join(D, sa.and_(E.c.issue == D.c.issue, E.c.address == D.c.address)))
        .where(E.c.delivery_id.is_(None), E.c.issue.in_(issues), E.c.address.is_not(None), _scope(issues), of_kind)
    )
    if kinds and not {"bounce", "complaint"} & set(kinds):
        return sa.union_all(by_id, by_address).subquery("ev")
    # Joined on the deliveries' (send, address) and (issue, address) indexes.
    real = _real_send_ids(issues)
    bounce_by_send = (
        sa.select(D.c.id, b_kind, not_machine, B.c.at, no_url)
        .select_from(B.join(D, sa.and_(B.c.send_id == D.c.send_id, B.c.address == D.c.address)))
        .where(b_filter, B.c.send_id.in_(real))
    )
    bounce_by_issue = (
        sa.select(D.c.id, b_kind, not_machine, B.c.at, no_url)
        .select_from(B.join(D, sa.and_(B.c.issue == D.c.issue, B.c.address == D.c.address)))
        .where(B.c.send_id.is_(None), b_filter, B.c.issue.in_(issues), D.c.send_id.in_(real))
    )
    return sa.union_all(by_id, by_address, bounce_by_send, bounce_by_issue).subquery("ev")


def _flag(cond) -> sa.ColumnElement:
    return sa.func.max(sa.case((cond, 1), else_=0))


def _count(cond) -> sa.ColumnElement:
    return sa.func.sum(sa.case((cond, 1), else_=0))


def _per_delivery(ev, archive_prefix: str) -> sa.Select:
    """One row per delivery with its engagement flags: the unit every figure is counted in."""
    human = ev.c.machine == sa.false()
    click = sa.and_(ev.c.kind == "click", human)
    read = sa.or_(sa.and_(ev.c.kind == "open", human), click)
    return (
        sa.select(
            ev.c.delivery_id,
            _flag(read).label("opened"),
            _flag(sa.and_(ev.c.kind == "open", ev.c.machine == sa.true())).label("machine_open"),
            _count(click).label("clicks"),
            _count(sa.and_(ev.c.kind == "click", ev.c.machine == sa.true())).label("machine_clicks"),
            _flag(click).label("clicked"),
            _flag(ev.c.kind == "unsubscribe").label("unsubscribed"),
            _flag(ev.c.kind == "complaint").label("complained"),
            _flag(ev.c.kind.in_(("bounce", "dropped"))).label("bounced"),
            _count(
                sa.or_(
                    sa.and_(ev.c.kind == "visit", human),
                    sa.and_(click, ev.c.url.startswith(archive_prefix, autoescape=True)),
                )
            ).label("visits"),
            sa.func.min(sa.case((read, ev.c.at), else_=sa.null())).label("first_read_at"),
        )
        .group_by(ev.c.delivery_id)
    )


def _flags_table(conn, issues, archive_prefix: str) -> sa.Table:
    """The per-delivery flags of these issues, computed once into a temporary table that every figure
    (totals, tiers, companies, inactive key accounts) then joins on its primary key."""
    flag_cols = ("opened", "machine_open", "clicks", "machine_clicks", "clicked", "unsubscribed", "complained", "bounced", "visits")
    table = sa.Table(
        f"report_flags_{uuid.uuid4().hex[:10]}",
        sa.MetaData(),
        sa.Column("delivery_id", sa.Integer, primary_key=True, autoincrement=False),
        *(sa.Column(c, sa.Integer, nullable=False) for c in flag_cols),
        sa.Column("first_read_at", sa.DateTime(timezone=True)),
        prefixes=["TEMPORARY"],
    )
    table.create(conn)
    select = _per_delivery(_resolved_events(issues), archive_prefix)
    conn.execute(table.insert().from_select([c.name for c in table.columns], select))
    if conn.dialect.name == "postgresql":  # temporary tables get no statistics of their own
        conn.execute(sa.text(f'ANALYZE "{table.name}"'))
    return table


def _z(col) -> sa.ColumnElement:
    return sa.func.coalesce(col, 0)


def _hour_bucket(col, dialect: str) -> sa.ColumnElement:
    """The UTC hour of a timestamp as text, so opens can be grouped in SQL on SQLite and PostgreSQL."""
    if dialect == "sqlite":
        return sa.func.strftime("%Y-%m-%d %H", col)
    return sa.func.to_char(sa.func.timezone("UTC", col), "YYYY-MM-DD HH24")


def _utc(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite may hand back text for expressions
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


# ---------------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------------


def issues_sent(engine: Engine) -> list[tuple[str, dt.datetime]]:
    """Issues with a real send, oldest first, with the time their first send started."""
    first = sa.func.min(sa.func.coalesce(S.c.started_at, S.c.created_at))
    q = sa.select(S.c.issue, first).where(S.c.kind == "real").group_by(S.c.issue).order_by(first, S.c.issue)
    with engine.connect() as conn:
        return [(issue, _utc(at)) for issue, at in conn.execute(q)]


def build_report(
    cfg: Config,
    issue: str | None = None,
    *,
    last: int | None = None,
    days: int = DEFAULT_DAYS,
    engine: Engine | None = None,
    articles: list[tuple[str, str]] | None = None,
) -> IssueReport:
    """The figures for one issue (default: the latest sent). ``last`` = issues looked at for inactive key
    accounts (default ``report.inactive_issues``). ``articles`` = (slug, title) pairs; by default read from
    ``content/<issue>/``, else derived from the clicked URLs."""
    engine = engine or db.get_engine(cfg)
    last = cfg.report.inactive_issues if last is None else last
    if last < 1:
        raise UserError(f"--last must be at least 1, got {last}")
    sent = issues_sent(engine)
    if not sent:
        raise UserError("no issue has been sent yet (the database has no real send)", where=cfg.database_url)
    order = [i for i, _ in sent]
    if issue is None:
        issue = order[-1]
    elif issue not in order:
        raise UserError(f"issue {issue!r} has no real send; sent issues: {', '.join(order)}")
    started = dict(sent)[issue]
    window = order[max(0, order.index(issue) + 1 - last): order.index(issue) + 1]

    base = cfg.site.base_url.rstrip("/") + "/"
    title, articles = _articles(cfg, issue, articles)
    dialect = engine.dialect.name
    with engine.connect() as conn:
        flags = _flags_table(conn, window, base)
        try:
            send_ids = list(conn.scalars(_real_send_ids([issue]).order_by(S.c.id)))
            overall, tiers, variants = _figures(conn, issue, flags)
            opens_by_day, after = _opens_by_day(conn, issue, flags, started, overall.delivered, days, dialect)
            clicks = _resolved_events([issue], ("click",))
            if articles is None:
                articles = _articles_from_clicks(conn, clicks, base, issue)
            top, others = _clicks(conn, clicks, base, issue, articles)
            reps = _rep_visits(conn, issue)
            _attach_rep_visits(top, reps)
            inactive = _inactive_key_accounts(conn, order, window, flags)
            companies = _companies(conn, issue, flags)
        finally:
            flags.drop(conn)
            conn.commit()
    return IssueReport(
        issue=issue,
        title=title,
        sent_at=started.isoformat() if started else None,
        send_ids=send_ids,
        overall=overall,
        tiers=tiers,
        variants=variants,
        opens_by_day=opens_by_day,
        opens_after_window=after,
        top_articles=top,
        other_links=others,
        rep_visits=reps,
        inactive_window=window,
        inactive_key_accounts=inactive,
        companies=companies,
    )


def _articles(cfg: Config, issue: str, given):
    """(issue title, [(slug, title)]) from the issue's content folder when it is still there."""
    if given is not None:
        return issue, list(given)
    try:
        from .content import load_issue

        loaded = load_issue(cfg, issue)
    except (ImportError, UserError, OSError):
        return issue, None
    return loaded.title, [(a.slug, a.title) for a in loaded.articles]


def _figures(conn, issue: str, per) -> tuple[Figures, dict[str, Figures], dict[str, Figures]]:
    sent = D.c.state == "sent"
    bounced = sa.and_(sent, _z(per.c.bounced) == 1)
    q = (
        sa.select(
            D.c.tier,
            D.c.variant,
            sa.func.count(D.c.id),
            _count(sent),
            _count(D.c.state == "failed"),
            _count(bounced),
            sa.func.sum(_z(per.c.opened)),
            sa.func.sum(_z(per.c.machine_open)),
            sa.func.sum(_z(per.c.clicks)),
            sa.func.sum(_z(per.c.machine_clicks)),
            sa.func.sum(_z(per.c.clicked)),
            sa.func.sum(_z(per.c.unsubscribed)),
            sa.func.sum(_z(per.c.complained)),
        )
        .select_from(D.outerjoin(per, per.c.delivery_id == D.c.id))
        .where(_scope([issue]))
        .group_by(D.c.tier, D.c.variant)
    )
    overall = Figures()
    tiers: dict[str, Figures] = {}
    variants: dict[str, Figures] = {}
    for tier, variant, recipients, n_sent, failed, n_bounced, opened, machine, clicks, m_clicks, clickers, unsub, compl in conn.execute(q):
        f = Figures(
            recipients=int(recipients), sent=int(n_sent or 0), failed=int(failed or 0), bounced=int(n_bounced or 0),
            delivered=int(n_sent or 0) - int(n_bounced or 0), opened=int(opened or 0),
            machine_opens=int(machine or 0), clicks=int(clicks or 0), machine_clicks=int(m_clicks or 0),
            clickers=int(clickers or 0),
            unsubscribed=int(unsub or 0), complaints=int(compl or 0),
        )
        overall.add(f)
        tiers.setdefault(tier, Figures()).add(f)
        variants.setdefault(variant, Figures()).add(f)
    rank = {t: i for i, t in enumerate(TIERS)}
    tiers = dict(sorted(tiers.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))
    return overall, tiers, dict(sorted(variants.items()))


def _opens_by_day(conn, issue: str, flags, started, delivered: int, days: int, dialect: str):
    """First human opens (unique readers) and machine opens per day since the send started.

    Grouped by the hour in SQL, folded into days here: a day is counted from the send's start."""
    if started is None:
        return [], 0
    hour = _hour_bucket(flags.c.first_read_at, dialect)
    firsts = conn.execute(
        sa.select(hour, sa.func.count())
        .select_from(flags.join(D, D.c.id == flags.c.delivery_id))
        .where(_scope([issue]), flags.c.first_read_at.is_not(None))
        .group_by(hour)
    ).all()
    ev = _resolved_events([issue], ("open",))
    mhour = _hour_bucket(ev.c.at, dialect)
    machine = conn.execute(
        sa.select(mhour, sa.func.count())
        .where(ev.c.kind == "open", ev.c.machine == sa.true())
        .group_by(mhour)
    ).all()

    def day_of(bucket: str) -> int:
        at = dt.datetime.strptime(bucket, "%Y-%m-%d %H").replace(tzinfo=dt.timezone.utc)
        return max(1, int((at - started).total_seconds() // 86400) + 1)

    opened = [0] * (days + 1)
    machine_by_day = [0] * (days + 1)
    after = 0
    for bucket, n in firsts:
        d = day_of(bucket)
        if d > days:
            after += n
        else:
            opened[d] += n
    for bucket, n in machine:
        d = day_of(bucket)
        if d <= days:
            machine_by_day[d] += n
    out, total = [], 0
    for d in range(1, days + 1):
        total += opened[d]
        out.append(DayOpens(d, opened[d], machine_by_day[d], round(total / delivered, 4) if delivered else 0.0))
    return out, after


def _slug_in_path(url: str, issue: str) -> str | None:
    """The article slug a URL or path points at ("" for the issue page itself), None when not this issue.

    The host is ignored: the archive may be served from the site or from the tracking host.
    """
    parts = [p for p in urlsplit(url).path.split("/") if p]
    if issue not in parts:
        return None
    i = parts.index(issue)
    nxt = parts[i + 1] if i + 1 < len(parts) else ""
    return "" if "." in nxt else nxt


def _articles_from_clicks(conn, ev, base: str, issue: str) -> list[tuple[str, str]]:
    urls = conn.scalars(sa.select(ev.c.url).where(ev.c.kind == "click").distinct()).all()
    slugs = sorted({s for u in urls if u and u.startswith(base) and (s := _slug_in_path(u, issue))})
    return [(s, s) for s in slugs]


def _clicks(conn, ev, base: str, issue: str, articles) -> tuple[list[ArticleClicks], list[LinkClicks]]:
    """Clicks per article (URL matched to its permalink in SQL, so clickers stay exact) and other links."""
    click = sa.and_(ev.c.kind == "click", ev.c.machine == sa.false())
    whens = [(ev.c.url.startswith(article_url(base, issue, slug), autoescape=True), slug) for slug, _ in articles]
    slug_col = sa.case(*whens, else_=sa.null()) if whens else sa.cast(sa.null(), sa.String)
    rows = conn.execute(
        sa.select(slug_col, sa.func.count(), sa.func.count(sa.distinct(ev.c.delivery_id)))
        .where(click, slug_col.is_not(None))
        .group_by(slug_col)
    ).all()
    counted = {slug: (int(n), int(u)) for slug, n, u in rows}
    top = [
        ArticleClicks(slug, title, article_url(base, issue, slug), *counted.get(slug, (0, 0)))
        for slug, title in articles
    ]
    top.sort(key=lambda a: (-a.clicks, -a.clickers, a.slug))
    others = conn.execute(
        sa.select(ev.c.url, sa.func.count().label("n"), sa.func.count(sa.distinct(ev.c.delivery_id)))
        .where(click, slug_col.is_(None), ev.c.url.is_not(None))
        .group_by(ev.c.url)
        .order_by(sa.desc("n"), ev.c.url)
        .limit(10)
    ).all()
    return top, [LinkClicks(u, int(n), int(c)) for u, n, c in others]


def _rep_visits(conn, issue: str) -> list[RepVisits]:
    """Visits to the archive through links sales reps shared (``?ref=<rep>``), per rep and page."""
    q = (
        sa.select(E.c.rep, E.c.url, sa.func.count())
        .where(
            E.c.kind == "visit",
            E.c.machine == sa.false(),  # link-preview robots (KakaoTalk, Slack) fetching a pasted link
            E.c.rep.is_not(None),
            E.c.rep != "",
            sa.or_(E.c.issue == issue, E.c.url.contains(f"/{issue}/", autoescape=True)),
        )
        .group_by(E.c.rep, E.c.url)
    )
    reps: dict[str, RepVisits] = {}
    for rep, url, n in conn.execute(q):
        r = reps.setdefault(rep, RepVisits(rep, 0))
        r.visits += int(n)
        slug = _slug_in_path(url or "", issue) or ""
        r.articles[slug] = r.articles.get(slug, 0) + int(n)
    return sorted(reps.values(), key=lambda r: (-r.visits, r.rep))


def _attach_rep_visits(top: list[ArticleClicks], reps: list[RepVisits]) -> None:
    by_slug = {a.slug: a for a in top}
    for r in reps:
        for slug, n in r.articles.items():
            if slug in by_slug:
                by_slug[slug].visits += n


def _inactive_key_accounts(conn, order: list[str], window: list[str], per) -> dict[str, list[InactiveAccount]]:
    """Key accounts delivered at least one of the window's issues that opened none of them (human)."""
    received = sa.and_(D.c.state == "sent", _z(per.c.bounced) == 0)
    q = (
        sa.select(
            D.c.address,
            sa.func.max(D.c.name),
            sa.func.max(D.c.company),
            sa.func.max(D.c.owner),
            sa.func.count(sa.distinct(D.c.issue)),
        )
        .select_from(D.outerjoin(per, per.c.delivery_id == D.c.id))
        .where(_scope(window), D.c.key == sa.true(), received)
        .group_by(D.c.address)
        .having(sa.func.sum(_z(per.c.opened)) == 0)
    )
    accounts = {
        addr: InactiveAccount(addr, name or "", company or "", owner or "", int(n), None, None)
        for addr, name, company, owner, n in conn.execute(q)
    }
    _last_reads(conn, accounts, order[: order.index(window[0])])
    grouped: dict[str, list[InactiveAccount]] = defaultdict(list)
    for acc in sorted(accounts.values(), key=lambda a: (-a.received, a.company, a.address)):
        grouped[acc.owner].append(acc)
    return dict(sorted(grouped.items(), key=lambda kv: (kv[0] == "", kv[0])))


def _last_reads(conn, accounts: dict[str, InactiveAccount], earlier: list[str]) -> None:
    """When each quiet account last read an issue (before the window, by construction)."""
    if not earlier or not accounts:
        return
    read = sa.and_(E.c.machine == sa.false(), E.c.kind.in_(("open", "click")))
    addresses = sorted(accounts)
    for i in range(0, len(addresses), 500):  # (issue, address) IN lists ride the deliveries' index
        q = (
            sa.select(D.c.address, D.c.issue, sa.func.max(E.c.at))
            .select_from(E.join(D, E.c.delivery_id == D.c.id))
            .where(_scope(earlier), D.c.address.in_(addresses[i:i + 500]), read)
            .group_by(D.c.address, D.c.issue)
        )
        for addr, issue, at in conn.execute(q):
            acc = accounts[addr]
            at = _utc(at).isoformat()
            if acc.last_opened_at is None or at > acc.last_opened_at:
                acc.last_opened_issue, acc.last_opened_at = issue, at


def _companies(conn, issue: str, per) -> list[CompanyEngagement]:
    """Engagement rolled up per customer company over all its addresses."""
    delivered = sa.and_(D.c.state == "sent", _z(per.c.bounced) == 0)
    opened = sa.func.sum(_z(per.c.opened))
    clicks = sa.func.sum(_z(per.c.clicks))
    q = (
        sa.select(
            D.c.company,
            sa.func.count(sa.distinct(D.c.address)),
            sa.func.max(sa.case((D.c.key == sa.true(), 1), else_=0)),
            _count(delivered),
            opened,
            clicks,
            sa.func.sum(_z(per.c.visits)),
        )
        .select_from(D.outerjoin(per, per.c.delivery_id == D.c.id))
        .where(_scope([issue]), D.c.company != "")
        .group_by(D.c.company)
    )
    rows = [
        CompanyEngagement(c, int(a), bool(k), int(dl or 0), int(o or 0), int(cl or 0), int(v or 0))
        for c, a, k, dl, o, cl, v in conn.execute(q)
    ]
    rows.sort(key=lambda c: (-(c.opened + c.clicks + c.visits), -c.key, c.company))
    return rows


# ---------------------------------------------------------------------------------------------------
# HTML: one self-contained file (inline CSS, inline script drawing SVG charts, nothing fetched)
# ---------------------------------------------------------------------------------------------------

TEMPLATE = "report.html.j2"


def _template_dir(cfg: Config) -> Path:
    """The project's templates/ when it holds the report template, else the one shipped with dangol."""
    own = cfg.path(cfg.paths.templates)
    if (own / TEMPLATE).exists():
        return own
    return Path(__file__).resolve().parents[1] / "templates"


def render_html(report: IssueReport, cfg: Config) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_template_dir(cfg))),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    # JSON for the page script (only what the charts draw); "<" escaped so a company called "</script>" cannot end the script block.
    full = report.as_dict()
    charts = {k: full[k] for k in ("opens_by_day", "tiers", "top_articles")}  # the tables are HTML already
    data = json.dumps(charts, ensure_ascii=False).replace("<", "\\u003c")
    return env.get_template(TEMPLATE).render(
        r=report, data=data, company=cfg.company.name, site_title=cfg.site.title, pct=_pct,
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), esc=html.escape,
    )


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def write_html(report: IssueReport, cfg: Config, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report, cfg), encoding="utf-8")
    return path
