"""`newsletter report`: figures from a seeded database (SQLite and PostgreSQL) against the same figures
recomputed in Python from the seed; the HTML report rendered in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from newsletter import db
from newsletter.config import load_config
from newsletter.errors import UserError
from newsletter.report import build_report, write_html

from _report_helpers import (
    BASE, ISSUES, SLUGS, expected_article_clicks, expected_companies, expected_figures,
    expected_first_reads_by_day, expected_inactive_key_accounts, expected_rep_visits, make_seed,
)

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NEWEST = ISSUES[-1]


@pytest.fixture
def cfg(project):
    cfg = load_config(project / "config.yaml")
    cfg.site.base_url = BASE
    return cfg


@pytest.fixture
def seeded(db_url):
    seed = make_seed()
    seed.insert(db_url)
    return seed


@pytest.fixture
def seeded_sqlite(sqlite_url):
    """For the CLI tests: the command is the same on both databases, the figures are tested on both above."""
    seed = make_seed()
    seed.insert(sqlite_url)
    return seed


def _figures_dict(f):
    return {k: v for k, v in f.as_dict().items() if k not in ("open_rate", "click_rate")}


def test_overall_tier_and_variant_figures_match_the_seed(cfg, seeded):
    r = build_report(cfg, NEWEST)
    assert r.issue == NEWEST
    assert _figures_dict(r.overall) == expected_figures(seeded, NEWEST)["all"]
    assert {k: _figures_dict(v) for k, v in r.tiers.items()} == expected_figures(seeded, NEWEST, lambda d: d["tier"])
    assert {k: _figures_dict(v) for k, v in r.variants.items()} == expected_figures(seeded, NEWEST, lambda d: d["variant"])
    # what a reader of the report checks: the slices add up, and nothing exceeds what was delivered
    assert sum(f.delivered for f in r.tiers.values()) == r.overall.delivered
    assert r.overall.delivered == r.overall.sent - r.overall.bounced
    assert 0 < r.overall.opened < r.overall.delivered
    assert r.overall.bounced > 0 and r.overall.unsubscribed > 0 and r.overall.complaints > 0


def test_test_sends_never_count(cfg, seeded):
    r = build_report(cfg, NEWEST)
    real = [d for d in seeded.deliveries if d["issue"] == NEWEST and d["send_id"] != len(ISSUES) + 1]
    assert r.overall.recipients == len(real)
    assert len(r.send_ids) == 1


def test_machine_opens_are_never_engagement(cfg, seeded, db_url):
    """Turning every human open into a machine open leaves only clickers as readers."""
    before = build_report(cfg, NEWEST)
    assert before.overall.machine_opens > 0
    with db.get_engine(db_url).begin() as conn:
        conn.execute(db.events.update().where(db.events.c.kind == "open").values(machine=True))
    after = build_report(cfg, NEWEST)
    assert after.overall.opened == after.overall.clickers  # a click still proves a read; an open no longer
    assert after.overall.machine_opens >= before.overall.machine_opens
    assert sum(d.opened for d in after.opens_by_day) + after.opens_after_window == after.overall.opened
    # key accounts whose only "opens" were machines' now show up as inactive
    n_before = sum(map(len, before.inactive_key_accounts.values()))
    n_after = sum(map(len, after.inactive_key_accounts.values()))
    assert n_after > n_before


def test_machine_clicks_are_shown_apart_and_never_engagement(cfg, seeded, db_url):
    """Scanner clicks are counted on their own; counted as people they would hide quiet key accounts."""
    before = build_report(cfg, NEWEST)
    scanner_clicks = [e for e in seeded.events if e["kind"] == "click" and e["machine"] and e["issue"] == NEWEST
                      and e["delivery_id"] in {d["id"] for d in seeded.deliveries if d["send_id"] <= len(ISSUES)}]
    assert before.overall.machine_clicks == len(scanner_clicks) > 0
    quiet = {a.address for accs in before.inactive_key_accounts.values() for a in accs}
    scanned_keys = {e["address"] for e in scanner_clicks} & quiet
    assert scanned_keys  # key accounts behind a link scanner that never read: still on the sales list
    with db.get_engine(db_url).begin() as conn:  # what the report would say if scanner clicks were people
        conn.execute(db.events.update().where(db.events.c.kind == "click").values(machine=False))
    after = build_report(cfg, NEWEST)
    assert after.overall.machine_clicks == 0
    assert after.overall.clicks == before.overall.clicks + before.overall.machine_clicks
    assert after.overall.opened > before.overall.opened
    assert not scanned_keys & {a.address for accs in after.inactive_key_accounts.values() for a in accs}


def test_top_articles_and_other_links(cfg, seeded):
    r = build_report(cfg, NEWEST)
    expected = expected_article_clicks(seeded, NEWEST)
    assert {a.slug: (a.clicks, a.clickers) for a in r.top_articles} == expected
    assert [a.clicks for a in r.top_articles] == sorted((a.clicks for a in r.top_articles), reverse=True)
    # titles come from content/2026-11 of the project
    assert r.title.startswith("가온레터 12호")
    assert any(a.title == "성수동에 새 로스터리를 열었습니다" for a in r.top_articles)
    assert {link.url for link in r.other_links} >= {"https://shop.gaonfoods.example/yuzu"}
    assert all("/2026-11/seongsu-roastery/" not in link.url for link in r.other_links)


def test_articles_from_clicked_urls_when_the_content_is_gone(cfg, seeded, tmp_path):
    cfg.paths.content = str(tmp_path / "no-content")
    r = build_report(cfg, "2026-10")
    assert r.title == "2026-10"
    expected = {slug: n for slug, n in expected_article_clicks(seeded, "2026-10").items() if n[0]}
    assert {a.slug: (a.clicks, a.clickers) for a in r.top_articles} == expected


def test_rep_visits_skip_robots_and_other_issues(cfg, seeded):
    r = build_report(cfg, NEWEST)
    assert {v.rep: v.visits for v in r.rep_visits} == expected_rep_visits(seeded, NEWEST)
    assert all(sum(v.articles.values()) == v.visits for v in r.rep_visits)


def test_opens_over_the_first_days(cfg, seeded):
    r = build_report(cfg, NEWEST)
    assert [d.opened for d in r.opens_by_day] == expected_first_reads_by_day(seeded, NEWEST, 7)
    assert r.opens_by_day[-1].cumulative_rate == round(
        sum(d.opened for d in r.opens_by_day) / r.overall.delivered, 4)


@pytest.mark.parametrize("last", [1, 2, 3])
def test_inactive_key_accounts_grouped_by_owner(cfg, seeded, last):
    r = build_report(cfg, NEWEST, last=last)
    assert r.inactive_window == list(ISSUES[-last:])
    got = {owner: {a.address: a.received for a in accounts} for owner, accounts in r.inactive_key_accounts.items()}
    assert got == expected_inactive_key_accounts(seeded, NEWEST, last)
    assert got, "the seed has key accounts that went quiet"
    assert all(a.owner == owner for owner, accounts in r.inactive_key_accounts.items() for a in accounts)


def test_inactive_default_window_comes_from_config(cfg, seeded):
    cfg.report.inactive_issues = 2
    assert build_report(cfg, NEWEST).inactive_window == list(ISSUES[-2:])
    # an older issue looks back from itself, not from the newest
    assert build_report(cfg, "2026-10", last=3).inactive_window == ["2026-09", "2026-10"]


def test_inactive_account_shows_when_it_last_read(cfg, seeded):
    r = build_report(cfg, NEWEST, last=1)
    accounts = [a for accs in r.inactive_key_accounts.values() for a in accs]
    earlier = [a for a in accounts if a.last_opened_issue]
    assert earlier and all(a.last_opened_issue in ISSUES[:-1] for a in earlier)


def test_companies_rollup(cfg, seeded):
    r = build_report(cfg, NEWEST)
    expected = expected_companies(seeded, NEWEST)
    got = {c.company: {"addresses": c.addresses, "delivered": c.delivered, "opened": c.opened,
                       "clicks": c.clicks, "visits": c.visits} for c in r.companies}
    assert got == expected
    assert any(c.addresses > 1 for c in r.companies)
    score = [c.opened + c.clicks + c.visits for c in r.companies]
    assert score == sorted(score, reverse=True)


def test_default_issue_is_the_latest_sent(cfg, seeded):
    assert build_report(cfg).issue == NEWEST


def test_unknown_issue_and_empty_database_are_clear_errors(cfg, db_url):
    with pytest.raises(UserError, match="no issue has been sent"):
        build_report(cfg)
    make_seed().insert(db_url)
    with pytest.raises(UserError, match="'2031-01' has no real send.*2026-11"):
        build_report(cfg, "2031-01")


def test_json_is_what_the_report_holds(cfg, seeded_sqlite, project):
    seeded = seeded_sqlite
    out = subprocess.run(
        ["newsletter", "report", NEWEST, "--json", "--last", "2", "-c", str(project / "config.yaml")],
        capture_output=True, text=True, env={**os.environ}, cwd=project,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    # the CLI reads config.yaml as written (its own site.base_url), so compare what does not depend on it
    assert data["overall"]["delivered"] == expected_figures(seeded, NEWEST)["all"]["delivered"]
    assert data["inactive_window"] == list(ISSUES[-2:])
    assert 0 < data["overall"]["open_rate"] < 1


def test_cli_prints_tables_and_one_line_errors(cfg, seeded_sqlite, project):
    page = project / "out" / "report.html"
    ok = subprocess.run(["newsletter", "report", "--html", str(page), "-c", str(project / "config.yaml")],
                        capture_output=True, text=True, cwd=project, env={**os.environ, "COLUMNS": "200"})
    assert ok.returncode == 0, ok.stderr
    assert "Key accounts with no human open" in ok.stdout and "rep-han" in ok.stdout
    assert "가온레터 12호" in page.read_text(encoding="utf-8") and str(page) in ok.stderr
    bad = subprocess.run(["newsletter", "report", "1999-01", "-c", str(project / "config.yaml")],
                         capture_output=True, text=True, cwd=project)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: issue '1999-01' has no real send") and "Traceback" not in bad.stderr


# --------------------------------------------------------------------------------------------------
# The HTML report, as a person sees it
# --------------------------------------------------------------------------------------------------


@pytest.mark.chromium
def test_html_report_renders_in_chromium(cfg, sqlite_url, tmp_path):
    seed = make_seed()
    # a company name that tries to break out of the page's script block must stay text
    seed.deliveries[0]["company"] = "</script><script>document.title='owned'</script>"
    seed.insert(sqlite_url)
    r = build_report(cfg, NEWEST)
    page = write_html(r, cfg, tmp_path / "report.html")
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the report must fetch nothing"

    shot = ROOT / "build" / "report-screenshot.png"
    shot.parent.mkdir(exist_ok=True)
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=3000",
              "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]
    dom = subprocess.run(common + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=60)
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    # the page script drew the three charts and said so; each has a real size and real bars
    marker = re.search(r'data-charts-ready="(\d+)"', dom.stdout)
    assert marker and marker.group(1) == "3", dom.stdout[:3000]
    for chart in ("chart-days", "chart-tiers", "chart-articles"):
        m = re.search(rf'<svg[^>]*id="{chart}"[^>]*>(.*?)</svg>', dom.stdout, re.S)
        assert m, chart
        tag = re.search(rf'<svg[^>]*id="{chart}"[^>]*>', dom.stdout).group(0)
        w, h = (float(x) for x in re.search(r'width="([\d.]+)" height="([\d.]+)"', tag).groups())
        assert w > 100 and h > 100, (chart, w, h)
        assert m.group(1).count("<rect") >= 3, chart
    assert "document.title='owned'" not in dom.stdout.split("<title>")[1].split("</title>")[0]
    assert "<title>owned</title>" not in dom.stdout
    # the tables a sales rep reads are in the page
    first_owner = next(iter(r.inactive_key_accounts))
    assert first_owner in dom.stdout
    assert r.companies[0].company.replace("&", "&amp;") in dom.stdout

    done = subprocess.run(common + [f"--screenshot={shot}", "--window-size=1280,2600", page.as_uri()],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and shot.stat().st_size > 20_000, done.stderr[-2000:]
