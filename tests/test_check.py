"""Preflight: each rule gets the bad input it exists for, and its message is checked."""

from __future__ import annotations

import pytest
import yaml

from newsletter.check import GMAIL_CLIP_BYTES, SIZE_WARN_BYTES, preflight, sent_size
from newsletter.config import load_config

from _build_helpers import article_meta, config, make_project, write_md


def _lines(report, level="error"):
    return [str(f) for f in report.findings if f.level == level]


def _only_error(report) -> str:
    errors = _lines(report)
    assert len(errors) == 1, errors
    return errors[0]


def test_example_issue_has_no_errors_or_warnings(project):
    cfg = load_config(project / "config.yaml")
    report = preflight(cfg)
    assert report.findings == []
    assert report.rendered is not None and report.rendered.variants


def test_clean_small_issue(tmp_path):
    assert preflight(config(make_project(tmp_path)), "2026-11").findings == []


def test_missing_front_matter_field(tmp_path):
    project = make_project(tmp_path, issue={"title": None})
    assert _only_error(preflight(config(project), "2026-11")) == \
        "error: content/2026-11/issue.md: title: missing (required front-matter field)"


def test_malformed_front_matter_field(tmp_path):
    project = make_project(tmp_path, articles={"01-a.md": article_meta("가", audience="vip")})
    assert _only_error(preflight(config(project), "2026-11")).startswith(
        "error: content/2026-11/01-a.md: audience: unknown tier 'vip'")


def test_image_file_missing(tmp_path):
    project = make_project(tmp_path, articles={"01-a.md": article_meta("가", image="roastery.jpg")})
    assert _only_error(preflight(config(project), "2026-11")) == \
        "error: content/2026-11/01-a.md: image: image file 'roastery.jpg' not found in content/2026-11/"


def test_body_image_missing(tmp_path):
    project = make_project(tmp_path, note="![로스터리 전경](roastery.jpg)")
    assert _only_error(preflight(config(project), "2026-11")).startswith(
        "error: content/2026-11/issue.md: body: broken image 'roastery.jpg': no such file or article in 2026-11/")


@pytest.mark.parametrize("body", ["![](photo.png)", '<img src="photo.png">', '<p><img src="https://cdn.example/a.png" alt=" "></p>'])
def test_img_without_alt(tmp_path, body):
    project = make_project(tmp_path)
    write_md(project / "content" / "2026-11" / "01-new-roastery.md", article_meta("로스터리"), body + "\n")
    error = _only_error(preflight(config(project), "2026-11"))
    assert error.startswith("error: content/2026-11/01-new-roastery.md: body: image ")
    assert error.endswith("has no alt text; write ![what it shows](" + error.split("'")[1] + ")")


def test_img_without_alt_in_template(tmp_path):
    project = make_project(tmp_path)
    partial = project / "templates" / "email" / "_article.mjml.j2"
    partial.write_text(partial.read_text(encoding="utf-8").replace('alt="{{ article.image_alt }}"', ""), encoding="utf-8")
    errors = _lines(preflight(config(project), "2026-11"))
    assert errors == ["error: templates/email.mjml.j2: img: <img src='https://webzine.gaonfoods.example/2026-11/photo.png'> has no alt text"]


def test_relative_link(tmp_path):
    project = make_project(tmp_path, note="[지난 호 보기](../2026-10/issue.md) and [가이드](guide.pdf)")
    errors = _lines(preflight(config(project), "2026-11"))
    assert errors == [
        "error: content/2026-11/issue.md: body: broken link '../2026-10/issue.md': no such file or article in 2026-11/ "
        "(link to NN-slug.md, an image beside the Markdown, or a full https:// URL)",
        "error: content/2026-11/issue.md: body: broken link 'guide.pdf': no such file or article in 2026-11/ "
        "(link to NN-slug.md, an image beside the Markdown, or a full https:// URL)",
    ]


def test_relative_link_in_template(tmp_path):
    project = make_project(tmp_path)
    footer = project / "templates" / "email" / "_footer.mjml.j2"
    footer.write_text(footer.read_text(encoding="utf-8").replace(
        "<br>\n        {{ company.address }}", '<br>\n        <a href="/privacy">개인정보처리방침</a> {{ company.address }}'),
        encoding="utf-8")
    assert _only_error(preflight(config(project), "2026-11")) == (
        "error: templates/email.mjml.j2: link: relative link '/privacy' in the e-mail; e-mail clients need absolute https:// URLs")


@pytest.mark.parametrize("href, reason", [
    ("https://webzine.gaonfoods.example/2026-11/no-such-article/", "no article 'no-such-article' in issue 2026-11"),
    ("/2031-01/", "no issue '2031-01' in content/"),
    ("https://webzine.gaonfoods.example/2026-11/missing.pdf", "no file 'missing.pdf' in content/2026-11/"),
    ("https://webzine.gaonfoods.example/2026-11/winter-blend/extra/", "no article 'winter-blend/extra' in issue 2026-11"),
])
def test_broken_internal_link(tmp_path, href, reason):
    project = make_project(tmp_path, note=f"[링크]({href})")
    absolute = href if href.startswith("https") else "https://webzine.gaonfoods.example" + href
    assert _only_error(preflight(config(project), "2026-11")) == \
        f"error: content/2026-11/issue.md: body: broken internal link {absolute!r}: {reason}"


def test_internal_links_that_exist_pass(tmp_path):
    project = make_project(tmp_path, note=(
        "[글](https://webzine.gaonfoods.example/2026-11/winter-blend/) [사진](/2026-11/photo.png) "
        "[슬래시 없이](https://webzine.gaonfoods.example/2026-11/new-roastery#top) "
        "[호](/2026-11/) [보관함](/) [피드](/feed.xml)"))
    assert preflight(config(project), "2026-11").findings == []


def _big_articles(n: int, chars: int) -> dict:
    return {f"{i:02d}-a{i}.md": article_meta(f"글 {i}", summary="가" * chars) for i in range(1, n + 1)}


def test_html_over_gmail_clipping_limit(tmp_path):
    project = make_project(tmp_path, articles=_big_articles(4, 9000))   # Hangul: 3 bytes each
    error = _only_error(preflight(config(project), "2026-11"))
    assert error.startswith("error: build/2026-11/email.html: size: HTML part is ")
    kb = float(error.split("HTML part is ")[1].split(" KB")[0])
    assert kb > GMAIL_CLIP_BYTES / 1024
    assert "Gmail clips above 102 KB" in error


def test_size_warning_band_and_as_sent_size(tmp_path):
    project = make_project(tmp_path, articles=_big_articles(4, 5100))
    cfg = config(project)
    report = preflight(cfg, "2026-11")
    assert _lines(report) == []
    warnings = _lines(report, "warning")
    assert len(warnings) == 1 and warnings[0].startswith("warning: build/2026-11/email.html: size: HTML part is ")
    html = report.rendered.variants[0].html
    assert SIZE_WARN_BYTES < sent_size(cfg, html) <= GMAIL_CLIP_BYTES
    assert sent_size(cfg, html) > len(html.encode("utf-8"))   # tracking links make the mail heavier than the build


def test_missing_unsubscribe_link(tmp_path):
    project = make_project(tmp_path)
    footer = project / "templates" / "email" / "_footer.mjml.j2"
    footer.write_text(footer.read_text(encoding="utf-8").replace('href="%%unsubscribe_url%%"', 'href="https://gaonfoods.example/"'),
                      encoding="utf-8")
    assert _only_error(preflight(config(project), "2026-11")) == \
        'error: templates/email.mjml.j2: unsubscribe: no unsubscribe link <a href="%%unsubscribe_url%%"> in the e-mail'


def test_unsubscribe_must_be_offered_in_english_too(tmp_path):
    project = make_project(tmp_path)
    footer = project / "templates" / "email" / "_footer.mjml.j2"
    text = footer.read_text(encoding="utf-8").replace("수신거부 (Unsubscribe)", "수신거부")
    text = text.replace('<a href="%%unsubscribe_url%%" target="_blank">Unsubscribe</a>', "Unsubscribe")
    footer.write_text(text, encoding="utf-8")
    assert _only_error(preflight(config(project), "2026-11")) == (
        "error: templates/email.mjml.j2: unsubscribe: the unsubscribe link text must say 'unsubscribe' "
        "(offer the opt-out as 수신거부 and Unsubscribe)")


def test_unsubscribe_missing_in_text_part(tmp_path):
    project = make_project(tmp_path)
    tpl = project / "templates" / "email.txt.j2"
    tpl.write_text(tpl.read_text(encoding="utf-8").replace("%%unsubscribe_url%%", "답장으로 알려 주세요"), encoding="utf-8")
    assert _only_error(preflight(config(project), "2026-11")) == \
        "error: templates/email.txt.j2: unsubscribe: the text part has no %%unsubscribe_url%%"


def test_legal_footer_missing_in_config(tmp_path):
    project = make_project(tmp_path)
    data = yaml.safe_load((project / "config.yaml").read_text(encoding="utf-8"))
    data["company"]["phone"] = ""
    (project / "config.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    errors = _lines(preflight(config(project), "2026-11"))
    assert errors == ["error: config.yaml: company.phone: missing: the legal footer of every e-mail needs it"]


def test_legal_footer_missing_in_template(tmp_path):
    project = make_project(tmp_path)
    footer = project / "templates" / "email" / "_footer.mjml.j2"
    footer.write_text(footer.read_text(encoding="utf-8").replace("{{ company.address }}<br>", ""), encoding="utf-8")
    assert _only_error(preflight(config(project), "2026-11")) == \
        "error: templates/email.mjml.j2: footer: legal footer lacks company.address ('서울특별시 성동구 성수이로 118, 3층 (04790)')"


@pytest.mark.parametrize("subject, label", [
    ("[광고] 겨울 신메뉴", "[광고]"),
    ("(광 고) 겨울 신메뉴", "(광 고)"),
    ("（광고） 겨울 신메뉴", "（광고）"),
    ("겨울 신메뉴 (광고)", "(광고)"),
    ("(광고) 겨울 신메뉴 [광고]", "[광고]"),
])
def test_ad_subject_look_alikes(tmp_path, subject, label):
    project = make_project(tmp_path, issue={"ad": True, "subject": subject})
    assert _only_error(preflight(config(project), "2026-11")) == (
        f"error: content/2026-11/issue.md: subject: {label!r} is not the legal ad label: write exactly (광고) at the "
        "very start, once, or leave it out (ad: true, so the build adds (광고))")


@pytest.mark.parametrize("subject, sent", [("(광고) 겨울 신메뉴", "(광고) 겨울 신메뉴"), ("겨울 신메뉴", "(광고) 겨울 신메뉴"),
                                           ("광고 촬영 현장 공개", "(광고) 광고 촬영 현장 공개")])
def test_ad_subject_accepted(tmp_path, subject, sent):
    project = make_project(tmp_path, issue={"ad": True, "subject": subject})
    report = preflight(config(project), "2026-11")
    assert report.findings == [] and report.rendered.subject == sent


def test_ad_label_on_a_non_ad_issue(tmp_path):
    project = make_project(tmp_path, issue={"ad": False, "subject": "(광고) 겨울 신메뉴"})
    assert _only_error(preflight(config(project), "2026-11")) == (
        "error: content/2026-11/issue.md: subject: carries an ad label '(광고)' but ad: false; set ad: true "
        "(the build then adds (광고)) or remove the label")


def test_unknown_placeholder(tmp_path):
    project = make_project(tmp_path, note="%%nmae%%님 안녕하세요")
    assert _only_error(preflight(config(project), "2026-11")) == (
        "error: content/2026-11/issue.md: body: unknown merge field %%nmae%% "
        "(known: %%company%%, %%name%%, %%open_url%%, %%r%%, %%unsubscribe_url%%)")


def test_no_merge_fields_in_subject(tmp_path):
    project = make_project(tmp_path, issue={"subject": "%%name%%님, 겨울 신메뉴"})
    assert _only_error(preflight(config(project), "2026-11")) == (
        "error: content/2026-11/issue.md: subject: merge fields (%%...%%) are not filled in the subject; write it for everyone")


def test_warnings_preheader_and_long_subject(tmp_path):
    long_subject = "성수 새 로스터리 오픈 소식과 겨울 신메뉴 유자꿀 라떼 레시피, 새벽 배송 권역 확대 안내"
    project = make_project(tmp_path, issue={"preheader": None, "subject": long_subject, "ad": True})
    report = preflight(config(project), "2026-11")
    assert _lines(report) == []
    assert _lines(report, "warning") == [
        "warning: content/2026-11/issue.md: preheader: missing: mail apps then show the first text of the e-mail as the preview line",
        f"warning: content/2026-11/issue.md: subject: {len(long_subject) + 5} characters as sent ('(광고) {long_subject}'); "
        "Korean mail apps cut it around 40",
    ]


def test_every_problem_listed_once(tmp_path):
    project = make_project(tmp_path, issue={"title": None, "subject": "[광고] 신메뉴", "ad": True},
                           articles={"01-a.md": article_meta("가", image="none.jpg", audience=["key"])})
    report = preflight(config(project), "2026-11")
    assert sorted((f.file, f.field) for f in report.errors) == [
        ("content/2026-11/01-a.md", "image"), ("content/2026-11/issue.md", "subject"), ("content/2026-11/issue.md", "title")]
    assert report.to_json()["errors"] == 3
