"""The shared corpus: every row's verdict, the audience, key customers and attention match truth.json exactly."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from _lists_helpers import LISTS, make_config, read_csv, truth
from typer.testing import CliRunner

from newsletter import db
from newsletter.cli import app
from newsletter.lists import clean_lists, write_outputs

TRUTH = truth()


def _clean(tmp_path, name="subscribers.csv", engine=None):
    cfg = make_config(tmp_path)
    engine = engine or db.get_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    return clean_lists(cfg, subscribers=LISTS / name, key_customers=LISTS / "key-customers.csv",
                       suppressions=LISTS / "suppressions.csv", engine=engine, progress=False)


@pytest.fixture(scope="module", params=["subscribers.csv", "subscribers-cp949.csv"])
def result(request, tmp_path_factory):
    return _clean(tmp_path_factory.mktemp("corpus"), request.param)


def test_every_row_verdict_matches_truth(result):
    assert len(result.rows) == len(TRUTH["rows"]) == 400
    for expected, row in zip(TRUTH["rows"], result.rows):
        got = {"row": row.index, "verdict": row.verdict, "canonical": row.canonical, "key": row.key,
               "tier": row.tier, "duplicate_of": row.duplicate_of, "repaired_from": row.repaired_from,
               "invalid_reason": row.invalid_reason, "suppression_reason": row.suppression_reason}
        assert got == {k: expected[k] for k in got}, expected["raw"]
        if expected["verdict"] == "invalid" and expected.get("normalized"):
            assert row.normalized == expected["normalized"]


def test_audience_is_the_deliverable_set_in_file_order(result):
    emails = [r.email for r in result.audience]
    assert emails == TRUTH["deliverable"]
    assert sorted(r.email for r in result.audience if r.key) == TRUTH["deliverable_key"]
    assert all(r.tier == "key" for r in result.audience if r.key)


def test_merged_record_keeps_highest_tier_union_of_tags_and_first_name(result):
    by_email = {r.email: r for r in result.audience}
    merged = by_email["hongjunghyun21@kakao.com"]  # rows 166 (regular) and 316 (key)
    assert merged.tier == "key" and merged.key
    first, second = TRUTH["rows"][166], TRUTH["rows"][316]
    assert first["tier"] == "regular" and second["tier"] == "key"
    repaired = by_email["oh.inyun@naver.com"]
    assert repaired.repaired_from == "oh.inyun@naver.con"


def test_attention_lists_every_key_customer_not_sent(result):
    expected = [(a["canonical"] or a["email"].strip(), a["name"], a["company"], a["owner"], a["attention_csv_reason"])
                for a in TRUTH["attention"]]
    got = [(a.email, a.name, a.company, a.owner, a.reason) for a in result.attention]
    assert got == expected
    assert [a.customer_id for a in result.attention] == [a["customer_id"] for a in TRUTH["attention"]]
    assert [list(a.rows) for a in result.attention] == [a["rows"] for a in TRUTH["attention"]]


def test_roster_every_customer_sent_or_in_attention(result):
    for c in result.customers:
        expected = TRUTH["roster"][c.customer_id]
        assert c.canonical == expected["canonical"]
        assert c.rows == expected["rows"]
        assert (c.status == "send") == (expected["status"] == "send")
        if expected["status"] == "send":
            assert c.canonical in TRUTH["deliverable_key"]
        else:
            assert c.status == expected["reason"]


def test_rejected_accounts_for_every_row_not_in_the_audience(result):
    in_audience = {r.email for r in result.audience}
    kept_rows = {r.index for r in result.rows if r.verdict in ("keep", "repaired")}
    assert {r.row for r in result.rejected} | kept_rows == set(range(400))
    assert len(kept_rows) == len(in_audience)
    by_row = {r.row: r for r in result.rejected}
    for t in TRUTH["rows"]:
        if t["verdict"] == "invalid":
            assert by_row[t["row"]].reason == f"invalid:{t['invalid_reason']}"
        elif t["verdict"] == "duplicate_of":
            assert by_row[t["row"]].reason == f"duplicate_of:{t['canonical']}"
        elif t["verdict"] == "suppressed":
            assert by_row[t["row"]].reason == f"suppressed:{t['suppression_reason']}"
        assert t["row"] not in by_row or by_row[t["row"]].line == t["row"] + 2


def test_summary_counts_match_truth(result):
    counts = TRUTH["counts"]
    assert result.summary["verdict"] == counts["verdict"]
    assert result.summary["invalid_reason"] == counts["invalid_reason"]
    assert result.summary["repairs"] == counts["rows_with_repair"]
    assert result.summary["unique_addresses"] == counts["unique_canonical"]
    assert result.summary["deliverable"] == counts["deliverable"]
    assert result.summary["deliverable_key"] == counts["deliverable_key"]


def test_cp949_gives_the_same_result_as_utf8(tmp_path):
    a, b = _clean(tmp_path / "a"), _clean(tmp_path / "b", "subscribers-cp949.csv")
    assert b.summary["encoding"] == "cp949" and a.summary["encoding"] == "utf-8"
    assert a.audience == b.audience
    assert [(x.email, x.reason) for x in a.attention] == [(x.email, x.reason) for x in b.attention]
    assert [(r.row, r.reason, r.email) for r in a.rejected] == [(r.row, r.reason, r.email) for r in b.rejected]
    assert [r.name for r in a.rows] == [r.name for r in b.rows]


def test_database_suppressions_are_honoured(db_url, tmp_path):
    engine = db.get_engine(db_url)
    with engine.begin() as conn:
        conn.execute(db.suppressions.insert(), [
            {"address": "Yejung_Han@Hanmail.net", "reason": "unsubscribed", "source": "tracking", "active": True},
            {"address": "taeinoh@gmail.com", "reason": "complaint", "source": "webhook", "active": True},  # KC-00012, key
            {"address": "juseo.bae@naver.com", "reason": "hard_bounce", "source": "bounce", "active": False},
        ])
    result = _clean(tmp_path, engine=engine)
    emails = {r.email for r in result.audience}
    assert "yejung_han@hanmail.net" not in emails and "taeinoh@gmail.com" not in emails
    assert "juseo.bae@naver.com" in emails  # an undone suppression no longer applies
    attention = {a.email: a.reason for a in result.attention}
    assert attention["taeinoh@gmail.com"] == "complaint"
    assert len(result.audience) == TRUTH["counts"]["deliverable"] - 2


def test_cli_writes_the_documented_files(tmp_path):
    out = tmp_path / "out"
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text("lists:\n  out: build/lists\n", encoding="utf-8")
    runner = CliRunner()
    res = runner.invoke(app, ["lists", "clean", "--config", str(cfg_path), "--subscribers",
                              str(LISTS / "subscribers-cp949.csv"), "--key-customers", str(LISTS / "key-customers.csv"),
                              "--suppressions", str(LISTS / "suppressions.csv"), "--out", str(out), "--json"],
                        env={"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"})
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["summary"]["deliverable"] == 333
    audience = read_csv(out / "audience.csv")
    assert list(audience[0]) == ["email", "name", "company", "tier", "owner", "key", "repaired_from"]
    assert [r["email"] for r in audience] == TRUTH["deliverable"]
    assert sorted(r["email"] for r in audience if r["key"] == "true") == TRUTH["deliverable_key"]
    attention = read_csv(out / "attention.csv")
    assert list(attention[0]) == ["email", "name", "company", "owner", "reason", "detail"]
    assert [r["reason"] for r in attention] == [a["attention_csv_reason"] for a in TRUTH["attention"]]
    rejected = read_csv(out / "rejected.csv")
    assert len(rejected) == 400 - 333
    assert {r["reason"].split(":")[0] for r in rejected} == {"invalid", "duplicate_of", "suppressed"}
    repairs = read_csv(out / "repairs.csv")
    assert len(repairs) == TRUTH["counts"]["rows_with_repair"]
    assert {(r["from"], r["to"]) for r in repairs} == {
        (t["repaired_from"], t["canonical"]) for t in TRUTH["rows"] if t["repaired_from"]}
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["verdict"] == TRUTH["counts"]["verdict"]


def test_cli_terminal_shows_attention_grouped_by_owner(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["lists", "clean", "--config", str(tmp_path / "none.yaml"), "--subscribers",
                              str(LISTS / "subscribers.csv"), "--key-customers", str(LISTS / "key-customers.csv"),
                              "--suppressions", str(LISTS / "suppressions.csv"), "--out", str(tmp_path / "o")],
                        env={"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "6 key customer(s) will NOT receive this send" in res.output
    owners = [line.strip() for line in res.output.splitlines() if line.strip().startswith("rep-")]
    assert owners == ["rep-han", "rep-kim", "rep-oh", "rep-park", "rep-seo"]
    assert "audience" in res.output and "333" in res.output
    assert "repaired row 21: yeonhyunh200@daum.met → yeonhyunh200@daum.net" in res.output
