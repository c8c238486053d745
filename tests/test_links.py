"""`newsletter links`: a rep's permalinks for the example issue, in each format, and end to end — the link a
rep pastes opens the article on the real tracking server and shows up in the report as the rep's visit."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from newsletter import db
from newsletter.config import load_config
from newsletter.content import article_url, issue_url, load_issue
from newsletter.errors import UserError
from newsletter.links import render, share_links
from newsletter.report import build_report
from newsletter.track.app import REF

from _site_helpers import build_example_site
from _track_helpers import live_server

ISSUE = "2026-11"


@pytest.fixture
def cfg(project):
    return load_config(project / "config.yaml")


def _cli(project, *args):
    return subprocess.run(["newsletter", "links", *args, "-c", str(project / "config.yaml")],
                          capture_output=True, text=True, cwd=project)


def test_text_is_a_message_with_every_article_attributed_to_the_rep(cfg, project):
    issue = load_issue(cfg, ISSUE)
    out = _cli(project, ISSUE, "--rep", "rep-kim")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert text.startswith("안녕하세요, 주식회사 가온푸드입니다.")
    assert f"{issue_url(cfg.site.base_url, ISSUE)}?ref=rep-kim" in text
    for a in issue.articles:
        block = text.split(f"{a.title}\n", 1)[1].split("\n\n", 1)[0]
        assert block.splitlines()[0] == a.summary
        assert block.splitlines()[1] == f"👉 {article_url(cfg.site.base_url, ISSUE, a.slug)}?ref=rep-kim"
    restricted = [a for a in issue.articles if a.audience]
    assert restricted, "the example issue has a key/loyal-only article"
    for a in restricted:
        assert f"■ [주요·단골 고객 전용] {a.title}" in text
    for a in issue.articles:
        if not a.audience:
            assert f"■ {a.title}" in text


def test_csv_has_one_row_per_link_with_audience(cfg, project, tmp_path):
    issue = load_issue(cfg, ISSUE)
    out = _cli(project, ISSUE, "--rep", "rep-han", "--format", "csv")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(rows) == len(issue.articles) + 1
    assert rows[0]["kind"] == "issue" and rows[0]["url"] == f"{issue_url(cfg.site.base_url, ISSUE)}?ref=rep-han"
    by_slug = {r["slug"]: r for r in rows[1:]}
    for a in issue.articles:
        row = by_slug[a.slug]
        assert (row["title"], row["summary"], row["rep"]) == (a.title, a.summary, "rep-han")
        assert row["audience"] == ";".join(a.audience or ())
    # to a file: a BOM so Korean Excel opens it as UTF-8
    path = tmp_path / "links.csv"
    assert _cli(project, ISSUE, "--rep", "rep-han", "-f", "csv", "-o", str(path)).returncode == 0
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert path.read_text(encoding="utf-8-sig") == out.stdout


def test_json_and_no_rep_gives_clean_permalinks(cfg, project):
    issue = load_issue(cfg, ISSUE)
    out = _cli(project, ISSUE, "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["rep"] is None and data["issue"] == ISSUE
    assert [link["url"] for link in data["links"]] == [issue_url(cfg.site.base_url, ISSUE)] + [
        article_url(cfg.site.base_url, ISSUE, a.slug) for a in issue.articles]
    assert [link["audience"] for link in data["links"][1:]] == [list(a.audience) if a.audience else None for a in issue.articles]


def test_default_issue_is_the_newest(cfg):
    assert share_links(cfg).issue == ISSUE


@pytest.mark.parametrize("rep", ["rep kim", "<b>x</b>", "kim&ref=lee", "", "r" * 65])
def test_a_rep_id_that_would_break_the_link_is_refused(project, rep):
    out = _cli(project, ISSUE, "--rep", rep)
    assert out.returncode == 2
    assert out.stderr.startswith("error: --rep") and "Traceback" not in out.stderr


def test_every_accepted_rep_id_reaches_the_tracking_server_intact(cfg):
    """The server reads ?ref= with parse_qs and records it only if it matches its REF pattern."""
    for rep in ("rep-kim", "kim.minsu", "영업_김", "R2"):
        for link in share_links(cfg, ISSUE, rep).links:
            ref = parse_qs(urlsplit(link.url).query)["ref"]
            assert ref == [rep] and REF.match(ref[0])


def test_unknown_issue_and_format_are_one_line_errors(project):
    out = _cli(project, "1999-01")
    assert out.returncode == 2 and out.stderr.startswith("error: ") and "1999-01" in out.stderr
    out = _cli(project, ISSUE, "--format", "xml")
    assert out.returncode == 2 and "expected one of text, csv, json" in out.stderr


def test_a_pasted_link_opens_the_article_and_counts_as_the_reps_visit(project, db_url):
    """links -> the tracking server's archive -> report: each link a rep shares is a visit for that rep."""
    cfg, _, _ = build_example_site(project)
    engine = db.get_engine(db_url)
    with engine.begin() as conn:  # the issue was sent, so the report covers it
        conn.execute(db.sends.insert().values(issue=ISSUE, kind="real", backend="outbox", status="done",
                                              started_at=db.utcnow()))
    with live_server(cfg, engine) as base:
        cfg.site.base_url = base
        shared = share_links(cfg, ISSUE, "rep-kim")
        with httpx.Client(timeout=10, headers={"User-Agent": "Mozilla/5.0 (Windows NT 10.0) Chrome/120"}) as http:
            for link in shared.links:
                page = http.get(link.url)
                assert page.status_code == 200, link.url
                assert link.title.replace("'", "&#39;") in page.text or link.title in page.text
            # a colleague's link to the first article
            assert http.get(f"{shared.links[1].url.split('?')[0]}?ref=rep-han").status_code == 200
    report = build_report(cfg, ISSUE)
    visits = {v.rep: v for v in report.rep_visits}
    assert visits["rep-kim"].visits == len(shared.links)
    assert visits["rep-kim"].articles == {link.slug: 1 for link in shared.links}
    assert visits["rep-han"].articles == {shared.links[1].slug: 1}
    assert {a.slug: a.visits for a in report.top_articles}[shared.links[1].slug] == 2


def test_share_links_raises_user_error_for_a_bad_rep(cfg):
    with pytest.raises(UserError, match="sales rep id"):
        share_links(cfg, ISSUE, "rep kim")


def test_render_formats_agree(cfg):
    s = share_links(cfg, ISSUE, "rep-park")
    urls_text = [line.split()[-1] for line in render(s, "text").splitlines() if "?ref=" in line]
    urls_csv = [r["url"] for r in csv.DictReader(io.StringIO(render(s, "csv")))]
    urls_json = [link["url"] for link in json.loads(render(s, "json"))["links"]]
    assert urls_text == urls_csv == urls_json
