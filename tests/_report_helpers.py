"""A small deterministic history of sends for report tests, and the figures computed from it in Python.

``make_seed()`` builds three monthly issues sent to ~150 people each (plus a test send that must never
show up): deliveries in every state, human and machine opens, clicks (some with no open, some from link
scanners), visits from reps' shared links (and link-preview robots), unsubscribes, complaints and
bounces, recorded the ways the pipeline records them (events by delivery id, webhook events by address,
rows of the ``bounces`` table). ``expected_*`` recompute the figures straight from these Python lists,
independently of the SQL in ``newsletter.report``.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa

from newsletter import db

UTC = dt.timezone.utc
BASE = "https://webzine.gaonfoods.example"
ISSUES = ("2026-09", "2026-10", "2026-11")
SLUGS = {  # the 2026-11 slugs match content/2026-11 of the example project
    "2026-09": ("autumn-blend", "grinder-care"),
    "2026-10": ("harvest-report", "pumpkin-latte", "new-packaging"),
    "2026-11": ("seongsu-roastery", "yuzu-honey-latte", "customer-story-bakery", "dawn-delivery", "cupping-invitation"),
}
REPS = ("rep-han", "rep-kang", "rep-kim", "rep-park")
TIERS = ("key", "loyal", "regular", "prospect")
VARIANT = {"key": "key-loyal", "loyal": "key-loyal", "regular": "all", "prospect": "all"}


@dataclass
class Person:
    address: str
    name: str
    company: str
    tier: str
    owner: str
    reads: float      # chance of a human open per issue
    apple: bool       # Apple Mail Privacy Protection: a machine open on every delivery
    scanned: bool = False  # behind a corporate link scanner: every link clicked on every delivery


@dataclass
class Seed:
    started: dict[str, dt.datetime]
    sends: list[dict] = field(default_factory=list)
    deliveries: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    bounces: list[dict] = field(default_factory=list)

    def insert(self, url: str) -> None:
        engine = db.get_engine(url)
        with engine.begin() as conn:
            conn.execute(db.sends.insert(), self.sends)
            conn.execute(db.deliveries.insert(), self.deliveries)
            conn.execute(db.events.insert(), self.events)
            conn.execute(db.bounces.insert(), self.bounces)


def make_seed(seed: int = 11, people: int = 160) -> Seed:
    rnd = random.Random(seed)
    companies = [f"가온고객{i:02d} 주식회사" for i in range(40)]
    population = []
    for i in range(people):
        tier = rnd.choices(TIERS, weights=(2, 3, 4, 2))[0]
        population.append(Person(
            address=f"p{i:03d}@example{i % 7}.co.kr",
            name=f"고객{i:03d}",
            company=rnd.choice(companies) if rnd.random() < 0.8 else "",
            tier=tier,
            owner=REPS[i % len(REPS)] if tier in ("key", "loyal") or rnd.random() < 0.5 else "",
            reads=rnd.choice((0.0, 0.0, 0.2, 0.5, 0.8)),
            apple=rnd.random() < 0.3,
            scanned=i % 6 == 0,  # not drawn from rnd: the rest of the seed stays as it was
        ))
    started = {issue: dt.datetime(2026, 9 + n, 1, 1, 0, tzinfo=UTC) for n, issue in enumerate(ISSUES)}
    s = Seed(started)
    delivery_id = 0
    digest = 0

    def event(kind, at, delivery=None, **kw):
        row = {"kind": kind, "at": at, "machine": False, "url": None, "rep": None, "delivery_id": None,
               "issue": None, "address": None, "provider_event_id": None}
        if delivery is not None:
            row.update(delivery_id=delivery["id"], issue=delivery["issue"], address=delivery["address"])
        row.update(kw)
        s.events.append(row)

    for send_id, issue in enumerate(ISSUES, start=1):
        start = started[issue]
        s.sends.append({"id": send_id, "issue": issue, "kind": "real", "backend": "outbox", "status": "done",
                        "created_at": start - dt.timedelta(hours=1), "started_at": start})
        urls = [f"{BASE}/{issue}/{slug}/" for slug in SLUGS[issue]]
        for person in population:
            if rnd.random() < 0.08:  # not on the list that month
                continue
            delivery_id += 1
            state = rnd.choices(("sent", "failed", "pending"), weights=(94, 4, 2))[0]
            sent_at = start + dt.timedelta(seconds=delivery_id % 600)
            d = {"id": delivery_id, "send_id": send_id, "issue": issue, "address": person.address,
                 "name": person.name, "company": person.company, "tier": person.tier, "owner": person.owner,
                 "key": person.tier == "key", "variant": VARIANT[person.tier], "state": state,
                 "sent_at": sent_at if state == "sent" else None}
            s.deliveries.append(d)
            if state != "sent":
                continue
            r = rnd.random()
            if r < 0.05:  # a bounce, recorded one of four ways; a bounced message is never read
                digest += 1
                way = rnd.randrange(4)
                if way == 0:
                    event("bounce", sent_at + dt.timedelta(minutes=5), d)
                elif way == 1:
                    event("dropped", sent_at, None, issue=issue, address=person.address,
                          provider_event_id=f"sg-{delivery_id}-drop")
                else:
                    s.bounces.append({"address": person.address, "kind": rnd.choice(("permanent", "temporary")),
                                      "status": "5.1.1", "send_id": send_id if way == 2 else None,
                                      "issue": issue, "digest": f"{digest:064d}",
                                      "at": sent_at + dt.timedelta(hours=1)})
                continue
            if person.apple:
                for k in range(rnd.randint(1, 2)):
                    event("open", sent_at + dt.timedelta(seconds=3 + k), d, machine=True)
            opened = rnd.random() < person.reads
            if opened:
                for _ in range(rnd.randint(1, 3)):
                    at = sent_at + dt.timedelta(hours=rnd.uniform(0.1, 24 * 9))
                    if rnd.random() < 0.15:  # a webhook open: matched on issue and address
                        event("open", at, None, issue=issue, address=person.address,
                              provider_event_id=f"sg-{len(s.events)}")
                    else:
                        event("open", at, d)
            if (opened and rnd.random() < 0.45) or rnd.random() < 0.04:  # the latter: images blocked
                for _ in range(rnd.randint(1, 3)):
                    target = rnd.random()
                    if target < 0.7:
                        url = rnd.choice(urls) + ("?utm_source=webzine" if rnd.random() < 0.3 else "")
                    elif target < 0.85:
                        url = f"{BASE}/{issue}/"
                    else:
                        url = rnd.choice(("https://shop.gaonfoods.example/yuzu", "https://gaonfoods.example/contact"))
                    event("click", sent_at + dt.timedelta(hours=rnd.uniform(0.2, 24 * 12)), d, url=url)
            scanner = rnd.random() < 0.03
            if scanner or person.scanned:  # a link scanner following every link: not a reader
                for k, url in enumerate(urls):
                    event("click", sent_at + dt.timedelta(seconds=2, milliseconds=150 * k), d, url=url, machine=True)
            if rnd.random() < 0.03:
                event("unsubscribe", sent_at + dt.timedelta(days=1), d)
            if rnd.random() < 0.02:
                if rnd.random() < 0.5:
                    event("complaint", sent_at + dt.timedelta(days=2), d, provider_event_id=f"sg-{delivery_id}-spam")
                else:
                    digest += 1
                    s.bounces.append({"address": person.address, "kind": "complaint", "status": None,
                                      "send_id": send_id, "issue": issue, "digest": f"{digest:064d}",
                                      "at": sent_at + dt.timedelta(days=2)})
        # visits from links reps shared (path as the archive server records it), robots among them
        for _ in range(rnd.randint(15, 30)):
            slug = rnd.choice(SLUGS[issue] + ("",))
            path = f"/{issue}/{slug}/" if slug else f"/{issue}/"
            bot = rnd.random() < 0.15
            event("visit", start + dt.timedelta(hours=rnd.uniform(1, 200)), None, url=path,
                  rep=rnd.choice(REPS), machine=bot, issue=issue if rnd.random() < 0.7 else None)
    # a test send of the newest issue to staff: never in any figure
    test_send = len(ISSUES) + 1
    s.sends.append({"id": test_send, "issue": ISSUES[-1], "kind": "test", "backend": "outbox", "status": "done",
                    "created_at": started[ISSUES[-1]] - dt.timedelta(days=1), "started_at": started[ISSUES[-1]] - dt.timedelta(days=1)})
    for person in population[:3]:
        delivery_id += 1
        d = {"id": delivery_id, "send_id": test_send, "issue": ISSUES[-1], "address": "staff" + person.address,
             "name": "직원", "company": person.company, "tier": person.tier, "owner": person.owner,
             "key": person.tier == "key", "variant": VARIANT[person.tier], "state": "sent",
             "sent_at": started[ISSUES[-1]] - dt.timedelta(days=1)}
        s.deliveries.append(d)
        event("open", started[ISSUES[-1]], d)
        event("click", started[ISSUES[-1]], d, url=f"{BASE}/{ISSUES[-1]}/{SLUGS[ISSUES[-1]][0]}/")
    return s


# -------------------------------------------------------------------------------------------------
# The figures, recomputed in plain Python
# -------------------------------------------------------------------------------------------------


def _real_deliveries(seed: Seed, issues) -> list[dict]:
    real = {x["id"] for x in seed.sends if x["kind"] == "real"}
    return [d for d in seed.deliveries if d["issue"] in issues and d["send_id"] in real]


def events_by_delivery(seed: Seed, issues) -> dict[int, list[dict]]:
    """Each real delivery's events: by id, or by (issue, address) for webhook events; bounce rows as events."""
    ds = _real_deliveries(seed, issues)
    by_key = {(d["issue"], d["address"]): d for d in ds}
    by_send = {(d["send_id"], d["address"]): d for d in ds}
    ids = {d["id"] for d in ds}
    out: dict[int, list[dict]] = defaultdict(list)
    for e in seed.events:
        if e["delivery_id"] in ids:
            out[e["delivery_id"]].append(e)
        elif e["delivery_id"] is None and (e["issue"], e["address"]) in by_key:
            out[by_key[(e["issue"], e["address"])]["id"]].append(e)
    for b in seed.bounces:
        d = by_send.get((b["send_id"], b["address"])) if b["send_id"] else by_key.get((b["issue"], b["address"]))
        if d:
            out[d["id"]].append({"kind": "complaint" if b["kind"] == "complaint" else "bounce", "machine": False,
                                 "at": b["at"], "url": None})
    return out


def is_read(e: dict) -> bool:
    return not e["machine"] and e["kind"] in ("open", "click")


def expected_figures(seed: Seed, issue: str, key=lambda d: "all") -> dict[str, dict]:
    evs = events_by_delivery(seed, [issue])
    out: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    for d in _real_deliveries(seed, [issue]):
        f = out[key(d)]
        mine = evs.get(d["id"], [])
        kinds = {e["kind"] for e in mine}
        f["recipients"] += 1
        f["failed"] += d["state"] == "failed"
        if d["state"] == "sent":
            f["sent"] += 1
            bounced = bool(kinds & {"bounce", "dropped"})
            f["bounced"] += bounced
            f["delivered"] += not bounced
        f["opened"] += any(is_read(e) for e in mine)
        f["machine_opens"] += any(e["kind"] == "open" and e["machine"] for e in mine)
        clicks = [e for e in mine if e["kind"] == "click" and not e["machine"]]
        f["clicks"] += len(clicks)
        f["machine_clicks"] += sum(1 for e in mine if e["kind"] == "click" and e["machine"])
        f["clickers"] += bool(clicks)
        f["unsubscribed"] += "unsubscribe" in kinds
        f["complaints"] += "complaint" in kinds
    return {k: dict(v) for k, v in out.items()}


def expected_article_clicks(seed: Seed, issue: str) -> dict[str, tuple[int, int]]:
    evs = events_by_delivery(seed, [issue])
    out = {}
    for slug in SLUGS[issue]:
        hits = [(did, e) for did, es in evs.items() for e in es
                if e["kind"] == "click" and not e["machine"] and e["url"].startswith(f"{BASE}/{issue}/{slug}/")]
        out[slug] = (len(hits), len({did for did, _ in hits}))
    return out


def expected_rep_visits(seed: Seed, issue: str) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for e in seed.events:
        if e["kind"] == "visit" and not e["machine"] and (e["issue"] == issue or f"/{issue}/" in e["url"]):
            out[e["rep"]] += 1
    return dict(out)


def expected_first_reads_by_day(seed: Seed, issue: str, days: int) -> list[int]:
    evs = events_by_delivery(seed, [issue])
    per_day = [0] * days
    for es in evs.values():
        reads = [e["at"] for e in es if is_read(e)]
        if reads:
            day = int((min(reads) - seed.started[issue]).total_seconds() // 86400)
            if day < days:
                per_day[max(day, 0)] += 1
    return per_day


def expected_inactive_key_accounts(seed: Seed, issue: str, last: int) -> dict[str, dict[str, int]]:
    """owner -> {address: issues received} for key accounts with no human read in the window."""
    order = sorted(ISSUES, key=lambda i: seed.started[i])
    window = order[max(0, order.index(issue) + 1 - last): order.index(issue) + 1]
    evs = events_by_delivery(seed, window)
    received: dict[str, set] = defaultdict(set)
    read: set[str] = set()
    owner = {}
    for d in _real_deliveries(seed, window):
        if not d["key"] or d["state"] != "sent":
            continue
        mine = evs.get(d["id"], [])
        if any(e["kind"] in ("bounce", "dropped") for e in mine):
            continue
        received[d["address"]].add(d["issue"])
        owner[d["address"]] = d["owner"]
        if any(is_read(e) for e in mine):
            read.add(d["address"])
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for addr, issues in received.items():
        if addr not in read:
            out[owner[addr]][addr] = len(issues)
    return dict(out)


def expected_companies(seed: Seed, issue: str) -> dict[str, dict]:
    evs = events_by_delivery(seed, [issue])
    out: dict[str, dict] = defaultdict(lambda: {"addresses": set(), "delivered": 0, "opened": 0, "clicks": 0, "visits": 0})
    for d in _real_deliveries(seed, [issue]):
        if not d["company"]:
            continue
        c = out[d["company"]]
        mine = evs.get(d["id"], [])
        c["addresses"].add(d["address"])
        c["delivered"] += d["state"] == "sent" and not any(e["kind"] in ("bounce", "dropped") for e in mine)
        c["opened"] += any(is_read(e) for e in mine)
        human_clicks = [e for e in mine if e["kind"] == "click" and not e["machine"]]
        c["clicks"] += len(human_clicks)
        c["visits"] += sum(1 for e in human_clicks if e["url"].startswith(BASE + "/"))
    return {k: {**v, "addresses": len(v["addresses"])} for k, v in out.items()}
