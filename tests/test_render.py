"""Issue -> build/<issue>/: the e-mail as a mail client and the send step would read it."""

from __future__ import annotations

import json
import re
import shutil
from email import message_from_bytes, policy

import lxml.html
import pytest

from newsletter.config import load_config
from newsletter.content import load_issue
from newsletter.render import build_issue, load_built, plan_variants
from newsletter.render.email import markdown_to_text

from _build_helpers import ROOT, article_meta, config, make_project

BASE = "https://webzine.gaonfoods.example"


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The repository's example issue, built once for this module."""
    dest = tmp_path_factory.mktemp("example")
    shutil.copy(ROOT / "config.yaml", dest / "config.yaml")
    for name in ("content", "templates"):
        shutil.copytree(ROOT / name, dest / name)
    cfg = load_config(dest / "config.yaml")
    issue = load_issue(cfg)
    return cfg, issue, build_issue(cfg, issue)


def _doc(html: str):
    return lxml.html.document_fromstring(html)


def test_manifest_follows_the_contract(example):
    cfg, issue, built = example
    folder = cfg.path("build") / issue.id
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["issue"] == issue.id and manifest["number"] == issue.number
    assert manifest["date"] == issue.date.isoformat() and manifest["ad"] is issue.ad
    assert set(manifest["tier_variant"]) == {"key", "loyal", "regular", "prospect"}
    assert set(manifest["tier_variant"].values()) == set(manifest["variants"])
    for name, v in manifest["variants"].items():
        prefix = "" if name == "all" else f"{name}/"
        assert (v["html"], v["text"], v["eml"]) == (f"{prefix}email.html", f"{prefix}email.txt", f"{prefix}email.eml")
        for key in ("html", "text", "eml"):
            assert (folder / v[key]).is_file()
    again = load_built(cfg, issue.id)
    assert again.subject == manifest["subject"] and again.tier_variant == manifest["tier_variant"]
    assert again.for_tier("prospect").html == (folder / "email.html").read_text(encoding="utf-8")


def test_audience_variants_of_the_example(example):
    _cfg, issue, built = example
    restricted = [a for a in issue.articles if a.audience]
    assert restricted, "the example issue shows one article to key/loyal customers only"
    for tier, name in built.tier_variant.items():
        slugs = built.variants[name].articles
        for a in issue.articles:
            assert (a.slug in slugs) == (a.audience is None or tier in a.audience)
    # the hidden article's link appears in the key variant only
    url = f"{BASE}/{issue.id}/{restricted[0].slug}/"
    assert url not in built.variants["all"].html and url not in built.variants["all"].text
    assert url in built.for_tier("key").html and url in built.for_tier("key").text


def test_html_is_mail_client_safe(example):
    _cfg, issue, built = example
    for variant in built.variants.values():
        html = variant.html
        doc = _doc(html)
        assert html.lower().startswith("<!doctype html>")
        for img in doc.iter("img"):
            assert img.get("alt") is not None, lxml.html.tostring(img)
            assert img.get("width", "").isdigit() and img.get("height", "").isdigit(), lxml.html.tostring(img)
            assert int(img.get("width")) <= 600
        for a in doc.iter("a"):
            href = a.get("href")
            assert re.match(r"^(https://|mailto:|%%unsubscribe_url%%$)", href), href
        assert re.search(r"max-width:\s*600px", html)
        assert doc.xpath('//meta[@name="color-scheme"]/@content') == ["light dark"]
        assert doc.xpath('//meta[@name="supported-color-schemes"]/@content') == ["light dark"]
        # styles that matter are inline: Korean text keeps words whole, headings are styled, even without <style>
        text_divs = [d for d in doc.iter("div") if "word-break:keep-all" in (d.get("style") or "").replace(" ", "")]
        assert len(text_divs) >= len(variant.articles)
        assert all("font-size" in (h.get("style") or "") for h in doc.iter("h2"))
        # the <style> block stays for media queries (dark mode, mobile)
        assert "prefers-color-scheme: dark" in html and "max-width:479px" in html.replace(" ", "")
        # hidden preheader
        preheader = doc.xpath('//div[contains(@style, "display:none")]')[0].text_content()
        assert issue.preheader in preheader


def test_links_placeholders_and_footer(example):
    cfg, issue, built = example
    html = built.variants["all"].html
    doc = _doc(html)
    hrefs = doc.xpath("//a/@href")
    assert f"{BASE}/{issue.id}/" in hrefs                     # view in browser
    for a in built.variants["all"].articles:
        assert f"{BASE}/{issue.id}/{a}/" in hrefs
    unsubscribe = doc.xpath('//a[@href="%%unsubscribe_url%%"]')
    words = " ".join(a.text_content() for a in unsubscribe)
    assert "수신거부" in words and "Unsubscribe" in words
    pixel = doc.xpath('//img[@src="%%open_url%%"]')
    assert len(pixel) == 1 and (pixel[0].get("width"), pixel[0].get("height"), pixel[0].get("alt")) == ("1", "1", "")
    assert "%%name%%" in html
    visible = doc.text_content()
    for value in (cfg.company.name, cfg.company.address, cfg.company.phone, cfg.company.email,
                  cfg.company.business_registration):
        assert value in visible


def test_text_part_is_readable(example):
    cfg, issue, built = example
    for variant in built.variants.values():
        text = variant.text
        assert "<" not in text and "**" not in text
        for slug in variant.articles:
            article = next(a for a in issue.articles if a.slug == slug)
            assert article.title in text
            assert f"{BASE}/{issue.id}/{slug}/" in text
        assert "수신거부 (Unsubscribe): %%unsubscribe_url%%" in text
        assert cfg.company.name in text and cfg.company.address in text and cfg.company.phone in text


def test_eml_preview(example):
    _cfg, issue, built = example
    msg = message_from_bytes(built.variants["all"].eml_path.read_bytes(), policy=policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    expected = ("(광고) " + issue.subject) if issue.ad and not issue.subject.startswith("(광고)") else issue.subject
    assert msg["Subject"] == expected == built.subject       # the space at a header fold survives
    html = parts[1].get_content()
    assert "%%" not in html and "홍길동님께" in html        # a preview shows sample values


def test_personalizing_is_plain_replacement(example):
    _cfg, _issue, built = example
    html = built.for_tier("regular").html
    filled = (html.replace("%%name%%", "김단골").replace("%%company%%", "단골상회")
              .replace("%%unsubscribe_url%%", "https://t.gaonfoods.example/u/u.AQ.xyz")
              .replace("%%open_url%%", "https://t.gaonfoods.example/o/o.AQ.xyz.gif"))
    assert "%%" not in filled
    doc = _doc(filled)
    assert doc.xpath('//a[@href="https://t.gaonfoods.example/u/u.AQ.xyz"]')
    assert "김단골님께" in doc.text_content()


def test_merge_template_equals_str_replace(example):
    from newsletter.render import MergeTemplate

    _cfg, _issue, built = example
    html = built.for_tier("key").html
    values = {"name": "김&lt;단골&gt;", "company": "단골상회", "unsubscribe_url": "https://t.example/u/u.AQ.x",
              "open_url": "https://t.example/o/o.AQ.x.gif"}
    by_replace = html
    for key, value in values.items():
        by_replace = by_replace.replace(f"%%{key}%%", value)
    merged = MergeTemplate(html)
    assert merged.fields == {"name", "unsubscribe_url", "open_url"}
    assert merged.fill(values) == by_replace
    assert MergeTemplate("a %%r%% b %%name%%").fill({"name": "x"}) == "a %%r%% b x"   # missing: left as written


def test_one_variant_without_audience_and_ad_label(tmp_path):
    project = make_project(tmp_path, issue={"ad": True, "subject": "(광고) 겨울 블렌드 출시"})
    cfg = config(project)
    built = build_issue(cfg, load_issue(cfg, "2026-11"))
    assert list(built.variants) == ["all"]
    assert built.tier_variant == {t: "all" for t in ("key", "loyal", "regular", "prospect")}
    assert built.subject == "(광고) 겨울 블렌드 출시"          # not doubled
    assert not (cfg.path("build") / "2026-11" / "key-loyal").exists()


def test_subject_without_label_when_not_an_ad(tmp_path):
    project = make_project(tmp_path, issue={"ad": False})
    cfg = config(project)
    built = build_issue(cfg, load_issue(cfg, "2026-11"))
    assert built.subject == "첫 추위, 따뜻한 한 잔을 준비했습니다"
    assert "(광고)" not in built.variants["all"].html


def test_variant_names_and_stale_variants_removed(tmp_path):
    articles = {
        "01-news.md": article_meta("모두에게"),
        "02-key.md": article_meta("핵심 고객 전용", audience=["key"]),
        "03-new.md": article_meta("잠재 고객 환영", audience=["prospect"]),
    }
    project = make_project(tmp_path, articles=articles)
    cfg = config(project)
    issue = load_issue(cfg, "2026-11")
    plans = plan_variants(issue)
    assert [(p.name, p.tiers) for p in plans] == [("all", ("loyal", "regular")), ("key", ("key",)), ("prospect", ("prospect",))]
    build_issue(cfg, issue)
    assert (cfg.path("build") / "2026-11" / "key" / "email.html").is_file()
    (project / "content" / "2026-11" / "02-key.md").unlink()
    build_issue(cfg, load_issue(cfg, "2026-11"))
    assert not (cfg.path("build") / "2026-11" / "key").exists()


def test_markdown_to_text():
    text = markdown_to_text("# 제목\n\n**굵게** [링크](https://a.example/)\n\n- 하나\n- 둘\n  1. 안\n\n> 인용\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert text == "제목\n\n굵게 링크 (https://a.example/)\n\n- 하나\n- 둘\n  1. 안\n\n> 인용\n\na | b\n1 | 2"


def test_load_built_before_build(tmp_path):
    from newsletter.errors import UserError

    project = make_project(tmp_path)
    with pytest.raises(UserError, match=r"issue 2026-11 is not built yet: run `newsletter build 2026-11`"):
        load_built(config(project), "2026-11")
