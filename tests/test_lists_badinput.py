"""Messy inputs: one clear line with file and row, the rest processed, nothing dropped without a rejected row."""

from __future__ import annotations

import codecs
import datetime as dt

import pytest
from _lists_helpers import HEADER, csv_bytes, make_config, read_csv, write
from openpyxl import Workbook
from typer.testing import CliRunner

from newsletter import db
from newsletter.cli import app
from newsletter.errors import UserError
from newsletter.lists import clean_lists

ROWS = [
    ("kim.minsu@naver.com", "김민수", "가온상사", "key", "b2b;vip", "2024-01-02", "rep-kim"),
    ("lee.jiwoo@daum.net", "이지우", "", "regular", "", "2024-02-03", "rep-lee"),
    ("park.seoyeon@gmail.com", "박서연", "(주)누리", "loyal", "교육", "2024-03-04", "rep-kim"),
    ("choi.yuna@nate.com", "최유나", "", "prospect", "", "", "rep-park"),
]
ROSTER = ("customer_id", "name", "company", "email", "owner")


@pytest.fixture
def env(tmp_path):
    cfg = make_config(tmp_path)
    engine = db.get_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    write(tmp_path / "suppressions.csv", csv_bytes([], header=("email", "reason", "at")))

    def run(subscribers, roster_rows=(), **kw):
        roster = write(tmp_path / "key-customers.csv", csv_bytes(roster_rows, header=ROSTER))
        return clean_lists(cfg, subscribers=subscribers, key_customers=kw.pop("key_customers", roster),
                           suppressions=tmp_path / "suppressions.csv", engine=engine, progress=False, **kw)

    return tmp_path, run


def test_unreadable_row_is_rejected_with_its_line_and_the_rest_processed(env):
    tmp, run = env
    lines = csv_bytes(ROWS).split(b"\r\n")
    lines.insert(3, b"bad\xff\xfe@naver.com,\xc0\xc1,,regular,,,rep-x")  # not UTF-8: becomes data row 2, line 4
    result = run(write(tmp / "s.csv", b"\r\n".join(lines)))
    assert result.summary["encoding"] == "utf-8"
    assert [r.email for r in result.audience] == [r[0] for r in ROWS]
    [bad] = result.rejected
    assert (bad.row, bad.line, bad.reason) == (2, 4, "invalid:unreadable")
    assert any(w.startswith(f"{tmp / 's.csv'}:4: row 2 cannot be decoded") for w in result.warnings)


def test_wrong_column_count_is_rejected_and_a_key_customer_there_shows_in_attention(env):
    tmp, run = env
    rows = [*ROWS, ("jung.hana@kakao.com", "정하나", "하나무역", "key")]  # 4 columns of 7
    result = run(write(tmp / "s.csv", csv_bytes(rows)), [("KC-1", "정하나", "하나무역", "jung.hana@kakao.com", "rep-jung")])
    [bad] = result.rejected
    assert (bad.row, bad.line, bad.reason, bad.email) == (4, 6, "invalid:columns", "jung.hana@kakao.com")
    assert "4 columns, the header has 7" in bad.detail
    [attention] = result.attention
    assert (attention.email, attention.reason, attention.owner) == ("jung.hana@kakao.com", "invalid", "rep-jung")
    assert any(":6: row 4 4 columns" in w for w in result.warnings)


def test_trailing_empty_columns_and_blank_lines_are_fine(env):
    tmp, run = env
    data = csv_bytes(ROWS).replace(b"rep-lee\r\n", b"rep-lee,,\r\n\r\n")
    result = run(write(tmp / "s.csv", data))
    assert len(result.audience) == 4 and not result.rejected and not result.warnings


def test_unknown_encoding_is_one_clear_error_and_encoding_flag_overrides(env):
    tmp, run = env
    rows = [(f"user{i}@example.co.kr", f"Zoé Müller {i}", "Société Générale", "regular", "", "", "rep") for i in range(5)]
    path = write(tmp / "latin1.csv", csv_bytes(rows, encoding="latin-1"))
    with pytest.raises(UserError, match=r"latin1\.csv: not UTF-8 or CP949/EUC-KR.*--encoding"):
        run(path)
    result = run(path, encoding="latin-1")
    assert result.audience[0].name == "Zoé Müller 0"


def test_cli_prints_one_line_without_traceback(tmp_path):
    path = write(tmp_path / "latin1.csv", csv_bytes([("a@example.co.kr", "Zoé", "Société", "", "", "", "")] * 3,
                                                     encoding="latin-1"))
    res = CliRunner().invoke(app, ["lists", "clean", "--config", str(tmp_path / "c.yaml"), "--subscribers", str(path),
                                   "--out", str(tmp_path / "o")],
                             env={"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"})
    assert isinstance(res.exception, UserError)  # main() prints it as one line, exit 2
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "newsletter", "lists", "clean", "--config", str(tmp_path / "c.yaml"),
                           "--subscribers", str(path), "--out", str(tmp_path / "o")], capture_output=True, text=True,
                          env={"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "PATH": "/usr/bin:/bin"},
                          cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: {path}: not UTF-8 or CP949")


@pytest.mark.parametrize("content", [b"", b"\r\n  \r\n"])
def test_empty_file_is_an_error_naming_the_file(env, content):
    tmp, run = env
    with pytest.raises(UserError, match=r"s\.csv: the file is empty"):
        run(write(tmp / "s.csv", content))


def test_header_only_file_gives_an_empty_audience_and_every_key_customer_missing(env):
    tmp, run = env
    result = run(write(tmp / "s.csv", csv_bytes([])), [("KC-1", "김민수", "", "kim.minsu@naver.com", "rep-kim")])
    assert result.audience == [] and [a.reason for a in result.attention] == ["missing_from_list"]


def test_missing_roster_warns_when_default_and_fails_when_given(env):
    tmp, run = env
    sub = write(tmp / "s.csv", csv_bytes(ROWS))
    result = run(sub, key_customers=None)  # cfg default lists/key-customers.csv does not exist in tmp
    assert any("key-customer roster not found" in w for w in result.warnings)
    assert [r.email for r in result.audience if r.key] == ["kim.minsu@naver.com"]
    with pytest.raises(UserError, match=r"nowhere\.csv: file not found"):
        run(sub, key_customers=tmp / "nowhere.csv")


def test_missing_email_column_names_the_headers(env):
    tmp, run = env
    with pytest.raises(UserError, match=r"s\.csv:1: no email column \(headers: 주소, 이름\)"):
        run(write(tmp / "s.csv", "주소,이름\r\nkim@naver.com,김\r\n"))


def test_korean_headers_in_cp949_and_bom_utf8(env):
    tmp, run = env
    header = ("이메일", "성명", "회사명", "고객등급", "태그", "수신동의일", "담당자")
    for name, data in (("cp949.csv", csv_bytes(ROWS, header=header, encoding="cp949")),
                       ("bom.csv", codecs.BOM_UTF8 + csv_bytes(ROWS, header=header))):
        result = run(write(tmp / name, data))
        assert [(r.email, r.name, r.company, r.tier, r.owner) for r in result.audience] == [
            (r[0], r[1], r[2], r[3], r[6]) for r in ROWS], name
        assert result.audience[0].tags == ("b2b", "vip")


def test_xlsx_import_with_korean_headers(env):
    tmp, run = env
    book = Workbook()
    sheet = book.active
    sheet.append(["이메일", "이름", "회사", "등급", "태그", "동의일", "담당자", None])
    for r in ROWS:
        sheet.append([r[0], r[1], r[2] or None, r[3], r[4] or None, dt.datetime(2024, 1, 2), r[6]])
    sheet.append([None] * 7)
    sheet.append([" ＜Oh.Seri@Naver.com＞", "오세리", 12345.0, "Loyal", None, None, "rep-oh"])
    book.save(tmp / "list.xlsx")
    result = run(tmp / "list.xlsx")
    assert result.summary["encoding"] == "xlsx"
    assert [r.email for r in result.audience] == [r[0] for r in ROWS] + ["oh.seri@naver.com"]
    last = result.audience[-1]
    assert (last.company, last.tier) == ("12345", "loyal")
    assert result.rows[-1].line == 7  # the sheet row number; the blank sheet row 6 is skipped


def test_unknown_tier_is_kept_as_regular_with_a_warning(env):
    tmp, run = env
    result = run(write(tmp / "s.csv", csv_bytes([("a.b@naver.com", "", "", "VIP고객", "", "", "")])))
    assert result.audience[0].tier == "regular"
    assert any("unknown tier 'vip고객'" in w for w in result.warnings)


def test_korean_tier_words_are_understood(env):
    tmp, run = env
    rows = [(f"u{i}@naver.com", "", "", tier, "", "", "") for i, tier in enumerate(("핵심", "단골", "일반", "잠재"))]
    result = run(write(tmp / "s.csv", csv_bytes(rows)))
    assert [r.tier for r in result.audience] == ["key", "loyal", "regular", "prospect"]
    assert not result.warnings


def test_key_row_not_on_the_roster_is_still_accounted_for(env):
    tmp, run = env
    rows = [*ROWS, ("N/A", "윤지호", "지호상사", "key", "", "", "rep-yoon")]
    result = run(write(tmp / "s.csv", csv_bytes(rows)))
    [a] = result.attention
    assert (a.email, a.name, a.reason, a.owner) == ("N/A", "윤지호", "invalid", "rep-yoon")
    assert "not on the roster" in a.detail


def test_outputs_round_trip_through_excel_friendly_csv(env, tmp_path):
    from newsletter.lists import write_outputs

    tmp, run = env
    result = run(write(tmp / "s.csv", csv_bytes(ROWS)))
    paths = write_outputs(result, tmp_path / "out")
    assert paths["audience.csv"].read_bytes().startswith(codecs.BOM_UTF8)
    assert read_csv(paths["audience.csv"])[0]["name"] == "김민수"
