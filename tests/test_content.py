"""content/<issue>/ -> Issue: the example issue, link rules, and a clear error for each kind of bad input."""

from __future__ import annotations

import datetime as dt

import pytest
from PIL import Image

from newsletter.config import load_config
from newsletter.content import list_issues, load_issue, read_issue
from newsletter.errors import UserError

from _build_helpers import add_issue, article_meta, config, make_project, write_image, write_md

BASE = "https://webzine.gaonfoods.example"


def test_example_issue_loads_newest_by_default(project):
    cfg = load_config(project / "config.yaml")
    ids = list_issues(cfg)
    assert ids == sorted(ids) and len(ids) >= 1
    issue = load_issue(cfg)
    assert issue.id == ids[-1]
    assert 4 <= len(issue.articles) <= 5
    assert [a.order for a in issue.articles] == sorted(a.order for a in issue.articles)
    for a in issue.articles:
        with Image.open(a.source.parent / a.image) as im:
            assert (a.image_width, a.image_height) == im.size
        assert a.title and a.summary and a.image_alt and a.author
        assert a.body_html.strip().startswith("<")


def test_fields_types_and_slugs(tmp_path):
    project = make_project(tmp_path, articles={
        "01-new-roastery.md": article_meta("로스터리"),
        "02-vip-tasting.md": article_meta("시음회", audience=["loyal", "key"]),
    })
    issue = load_issue(config(project), "2026-11")
    assert issue.date == dt.date(2026, 11, 3) and issue.number == 12 and issue.ad is False
    assert [(a.order, a.slug) for a in issue.articles] == [(1, "new-roastery"), (2, "vip-tasting")]
    assert issue.articles[0].audience is None
    assert issue.articles[1].audience == ("key", "loyal")      # normalised to tier order
    assert (issue.articles[0].image_width, issue.articles[0].image_height) == (1200, 600)


def test_relative_links_become_permalinks(tmp_path):
    project = make_project(tmp_path, note=(
        "[로스터리](01-new-roastery.md) [호](issue.md) [지난 호](/2026-10/) ![사진](photo.png) "
        "[절](02-winter-blend.md#recipe) [없음](03-missing.md) [밖](https://example.org/a)"))
    issue = load_issue(config(project), "2026-11")
    html = issue.note_html
    assert f'href="{BASE}/2026-11/new-roastery/"' in html
    assert f'href="{BASE}/2026-11/"' in html
    assert f'href="{BASE}/2026-10/"' in html
    assert f'href="{BASE}/2026-11/winter-blend/#recipe"' in html
    assert f'src="{BASE}/2026-11/photo.png"' in html and 'width="552" height="276"' in html
    assert 'href="03-missing.md"' in html          # left as written: preflight reports it
    assert 'href="https://example.org/a"' in html


@pytest.mark.parametrize("field, value, expected", [
    ("title", None, "title: missing"),
    ("subject", "", "subject: missing"),
    ("date", "다음 주 화요일", "date: expected a date YYYY-MM-DD"),
    ("number", "열두", "number: expected a whole number"),
    ("ad", "yes please", "ad: expected true or false"),
    ("titel", "오타", "titel: unknown front-matter field"),
])
def test_bad_issue_front_matter_names_file_and_field(tmp_path, field, value, expected):
    project = make_project(tmp_path, issue={field: value})
    with pytest.raises(UserError) as err:
        load_issue(config(project), "2026-11")
    assert str(err.value).startswith("content/2026-11/issue.md: " + expected)


@pytest.mark.parametrize("meta, expected", [
    (article_meta("가", summary=None), "summary: missing"),
    (article_meta("가", image="nope.jpg"), "image: image file 'nope.jpg' not found"),
    (article_meta("가", audience=["vip"]), "audience: unknown tier 'vip'"),
    (article_meta("가", audience="everyone, please"), "audience: unknown tier"),
    (article_meta("가", image_alt=["a", "b"]), "image_alt: expected text"),
])
def test_bad_article_front_matter_names_file_and_field(tmp_path, meta, expected):
    project = make_project(tmp_path, articles={"01-first.md": article_meta("첫 글"), "02-bad.md": meta})
    with pytest.raises(UserError) as err:
        load_issue(config(project), "2026-11")
    assert str(err.value).startswith("content/2026-11/02-bad.md: " + expected), str(err.value)


def test_broken_yaml_and_missing_front_matter(tmp_path):
    project = make_project(tmp_path)
    folder = project / "content" / "2026-11"
    (folder / "02-winter-blend.md").write_text("---\ntitle: [겨울\n---\n본문\n", encoding="utf-8")
    write_md(folder / "03-plain.md", None, "front matter 없이 쓴 글\n")
    issue, problems = read_issue(config(project), "2026-11")
    lines = [f"{p.file.name}: {p.field}: {p.message}" for p in problems]
    assert any(line.startswith("02-winter-blend.md: front matter: not valid YAML at line 2") for line in lines), lines
    assert any(line.startswith("03-plain.md: front matter: missing") for line in lines), lines


def test_not_an_image_and_bad_file_name(tmp_path):
    project = make_project(tmp_path)
    folder = project / "content" / "2026-11"
    (folder / "fake.png").write_text("not a picture")
    write_md(folder / "03-fake.md", article_meta("가짜", image="fake.png"))
    write_md(folder / "신상품.md", article_meta("한글 파일 이름"))
    _issue, problems = read_issue(config(project), "2026-11")
    lines = [f"{p.file.name}: {p.field}: {p.message}" for p in problems]
    assert "03-fake.md: image: 'fake.png' is not an image Pillow can read" in lines
    assert any(line.startswith("신상품.md: file name: expected NN-slug.md") for line in lines)


def test_duplicate_slug(tmp_path):
    project = make_project(tmp_path, articles={"01-news.md": article_meta("가"), "02-news.md": article_meta("나")})
    with pytest.raises(UserError, match=r"02-news.md: file name: slug 'news' already used by 01-news.md"):
        load_issue(config(project), "2026-11")


def test_every_problem_is_collected(tmp_path):
    project = make_project(tmp_path, issue={"title": None, "number": "x"},
                           articles={"01-a.md": article_meta("가", author=None)})
    _issue, problems = read_issue(config(project), "2026-11")
    assert {(p.file.name, p.field) for p in problems} == {("issue.md", "title"), ("issue.md", "number"), ("01-a.md", "author")}
    with pytest.raises(UserError, match=r"and 2 more; run `newsletter check 2026-11`"):
        load_issue(config(project), "2026-11")


def test_unknown_issue_and_empty_content(tmp_path):
    project = make_project(tmp_path)
    add_issue(project, "2026-12")
    cfg = config(project)
    assert list_issues(cfg) == ["2026-11", "2026-12"]
    assert load_issue(cfg).id == "2026-12"
    with pytest.raises(UserError, match=r"issue '2027-01' not found.*issues: 2026-11, 2026-12"):
        load_issue(cfg, "2027-01")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.yaml").write_text("site:\n  base_url: https://x.example\n")
    with pytest.raises(UserError, match="no issue found"):
        load_issue(load_config(empty / "config.yaml"))


def test_body_image_sizes_capped_to_email_width(tmp_path):
    project = make_project(tmp_path, note="![작은 그림](small.png)")
    write_image(project / "content" / "2026-11" / "small.png", (300, 200))
    html = load_issue(config(project), "2026-11").note_html
    assert 'width="300" height="200"' in html
