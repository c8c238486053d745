"""The commands as an editor runs them: build, check, new — exit codes, files, one-line errors, --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml
from typer.testing import CliRunner

from newsletter.cli import app

from _build_helpers import article_meta, make_project

runner = CliRunner()


def _run(project, *args):
    return runner.invoke(app, [*args, "--config", str(project / "config.yaml")], catch_exceptions=False)


def _cli(project, *args):
    """The real console script path (main() turns a UserError into one line, exit 2)."""
    env = {**os.environ, "NEWSLETTER_CONFIG": str(project / "config.yaml")}
    return subprocess.run([sys.executable, "-m", "newsletter", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=60)


def test_build_example_writes_email_and_site(project):
    result = _run(project, "build", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    issue = data["issue"]
    assert data["built"] is True and data["subject"].startswith("(광고) ")
    assert set(data["tier_variant"]) == {"key", "loyal", "regular", "prospect"}
    for v in data["variants"].values():
        assert (project / v["html"]).is_file() and v["sent_bytes"] < 102 * 1024
    assert (project / "build" / issue / "manifest.json").is_file()
    assert (project / "build" / issue / "email.eml").is_file()
    assert (project / "build" / "site" / "index.html").is_file()
    assert data["site"]["issues"] >= 1
    assert data["seconds"]["total"] > 0 and set(data["seconds"]) >= {"mjml", "inline_css", "site"}


def test_build_prints_summary_table(tmp_path):
    project = make_project(tmp_path)
    result = _run(project, "build", "2026-11", "--no-site")
    assert result.exit_code == 0, result.output
    for words in ("variant", "all", "regular, prospect", "MJML compile", "CSS inlining", "total"):
        assert words in result.output


def test_build_stops_on_preflight_errors_and_writes_nothing(tmp_path):
    project = make_project(tmp_path, issue={"subject": "[광고] 신메뉴", "ad": True},
                           articles={"01-a.md": article_meta("가", image="missing.jpg")})
    result = _run(project, "build", "2026-11", "--no-site")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3 and lines[-1] == "build stopped: 2 error(s) in 2026-11"   # one line each, never wrapped
    assert lines[0] == "error: content/2026-11/01-a.md: image: image file 'missing.jpg' not found in content/2026-11/"
    assert lines[1].startswith("error: content/2026-11/issue.md: subject: '[광고]' is not the legal ad label")
    assert not (project / "build" / "2026-11").exists()


def test_check_json(tmp_path):
    project = make_project(tmp_path, issue={"preheader": None}, articles={"01-a.md": article_meta("가", author=None)})
    result = _run(project, "check", "2026-11", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data == {"issue": "2026-11", "errors": 1, "warnings": 1, "findings": [
        {"level": "error", "file": "content/2026-11/01-a.md", "field": "author", "message": "missing (required front-matter field)"},
        {"level": "warning", "file": "content/2026-11/issue.md", "field": "preheader",
         "message": "missing: mail apps then show the first text of the e-mail as the preview line"},
    ]}


def test_check_passes_with_warnings_only(tmp_path):
    project = make_project(tmp_path, issue={"preheader": None})
    result = _run(project, "check", "2026-11")
    assert result.exit_code == 0
    assert "2026-11: 0 error(s), 1 warning(s)" in result.output


def test_new_issue_from_previous_structure(tmp_path):
    project = make_project(tmp_path, articles={
        "01-news.md": article_meta("소식"),
        "02-vip.md": article_meta("시음회", audience=["key", "loyal"]),
        "03-recipe.md": article_meta("레시피"),
    }, issue={"ad": True, "number": 12})
    result = _run(project, "new", "2026-12")
    assert result.exit_code == 0, result.output
    folder = project / "content" / "2026-12"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["01-article-1.md", "02-article-2.md", "03-article-3.md", "issue.md"]
    head = yaml.safe_load((folder / "issue.md").read_text(encoding="utf-8").split("---")[1])
    assert head["number"] == 13 and head["ad"] is True and str(head["date"]) == "2026-12-01"
    vip = yaml.safe_load((folder / "02-article-2.md").read_text(encoding="utf-8").split("---")[1])
    assert vip["audience"] == ["key", "loyal"]
    # the scaffold is incomplete on purpose: check lists what is left to write
    check = _run(project, "check", "2026-12", "--json")
    findings = {(f["file"], f["field"]) for f in json.loads(check.stdout)["findings"] if f["level"] == "error"}
    assert ("content/2026-12/issue.md", "title") in findings
    assert ("content/2026-12/02-article-2.md", "image") in findings
    assert check.exit_code == 1


def _scaffolded_date(project, issue: str, rule) -> tuple[str, str]:
    """``newsletter new ISSUE`` under ``schedule.rule: rule``; the date: value and its line."""
    cfg = yaml.safe_load((project / "config.yaml").read_text(encoding="utf-8"))
    cfg["schedule"]["rule"] = rule
    (project / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    result = _run(project, "new", issue)
    assert result.exit_code == 0, result.output
    text = (project / "content" / issue / "issue.md").read_text(encoding="utf-8")
    line = next(ln for ln in text.splitlines() if ln.startswith("date:"))
    return str(yaml.safe_load(text.split("---")[1])["date"]), line


def test_new_dates_the_issue_on_its_scheduled_send_day(tmp_path):
    project = make_project(tmp_path)
    date, line = _scaffolded_date(project, "2027-01", "first tuesday 10:00")
    assert date == "2027-01-05" and "2027-01-05 (화) 10:00 KST" in line
    # 2027-02-09, the second Tuesday, is 설날 대체 휴일: the slot moves to Wednesday the 10th
    date, line = _scaffolded_date(project, "2027-02", "second tuesday 10:00")
    assert date == "2027-02-10" and "2027-02-09" in line
    date, _ = _scaffolded_date(project, "2027-03", "0 9 * * 5#1")   # cron: first Friday
    assert date == "2027-03-05"


def test_new_without_a_rule_uses_the_first_and_says_so(tmp_path):
    project = make_project(tmp_path)
    date, line = _scaffolded_date(project, "2027-01", None)
    assert date == "2027-01-01" and "schedule.rule이 없어 1일로 둠" in line
    date, line = _scaffolded_date(project, "2027-02", "every tuesday")   # unreadable: new still works
    assert date == "2027-02-01" and "schedule.rule을 읽지 못해" in line


def test_new_refuses_existing_issue_with_one_line(tmp_path):
    project = make_project(tmp_path)
    result = _cli(project, "new", "2026-11")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and "already exists" in result.stderr
    bad = _cli(project, "new", "../escape")
    assert bad.returncode == 2 and "issue id '../escape'" in bad.stderr


def test_unknown_issue_is_one_line(tmp_path):
    project = make_project(tmp_path)
    result = _cli(project, "build", "2031-01")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"error: issue '2031-01' not found: no {project / 'content' / '2031-01' / 'issue.md'} (issues: 2026-11)"
