"""The web archive: permalinks, preview cards, feeds, sitemap, restricted articles, rebuilds."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from newsletter.content import article_url, asset_url, issue_url, load_issue
from newsletter.errors import UserError
from newsletter.site import build_site

from _site_helpers import build_example_site, parse_page, resolve_relative, url_to_file

ATOM = "{http://www.w3.org/2005/Atom}"
SM = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
RESTRICTED = ("2026-11", "cupping-invitation")


@pytest.fixture
def site(project):
    cfg, issues, result = build_example_site(project)
    return cfg, issues, result, result.out_dir


def public_pairs(issues):
    return [(i.id, a) for i in issues for a in i.articles if not a.audience]


def test_pages_exist_at_their_permalinks(site):
    cfg, issues, result, out = site
    base = cfg.site.base_url
    assert (out / "index.html").is_file()
    assert {i.id for i in issues} == {"2026-10", "2026-11"}
    for issue in issues:
        page = parse_page(url_to_file(out, base, issue_url(base, issue.id)))
        assert issue.title in page.title
    pairs = public_pairs(issues)
    assert len(pairs) == 7 == result.articles
    for issue_id, article in pairs:
        url = article_url(base, issue_id, article.slug)
        assert url == f"{base}/{issue_id}/{article.slug}/"
        page = parse_page(out / issue_id / article.slug / "index.html")
        assert article.title in page.title
        assert page.html_lang == "ko"
        assert (out / issue_id / article.image).is_file()        # the image beside the issue page


def test_archive_index_lists_issues_newest_first(site):
    cfg, issues, result, out = site
    html = (out / "index.html").read_text(encoding="utf-8")
    newest, older = load_issue(cfg, "2026-11"), load_issue(cfg, "2026-10")
    assert html.index(newest.title) < html.index(older.title)
    for issue_id, article in public_pairs(issues):
        assert f'href="{issue_id}/{article.slug}/"' in html


def test_open_graph_and_twitter_cards_on_an_article(site):
    cfg, issues, result, out = site
    base = cfg.site.base_url
    article = load_issue(cfg, "2026-11").articles[0]
    page = parse_page(out / "2026-11" / article.slug / "index.html")
    url = article_url(base, "2026-11", article.slug)
    assert page.links["canonical"] == url
    assert page.meta["og:url"] == url
    assert page.meta["og:type"] == "article"
    assert page.meta["og:title"] == article.title
    assert page.meta["og:description"] == article.summary
    assert page.meta["og:image"] == asset_url(base, "2026-11", article.image)
    assert url_to_file(out, base, page.meta["og:image"]).is_file()
    assert (page.meta["og:image:width"], page.meta["og:image:height"]) == ("1200", "630")
    assert page.meta["og:image:alt"] == article.image_alt
    assert page.meta["twitter:card"] == "summary_large_image"
    assert page.meta["twitter:image"] == page.meta["og:image"]
    assert page.meta["article:published_time"] == "2026-11-03T10:00:00+09:00"


def test_every_page_has_a_card_with_an_absolute_existing_image(site):
    cfg, issues, result, out = site
    for url in result.urls:
        page = parse_page(url_to_file(out, cfg.site.base_url, url))
        assert page.links["canonical"] == page.meta["og:url"] == url
        assert page.meta["og:title"] and page.meta["og:description"]
        assert page.meta["og:image"].startswith("https://"), url
        assert url_to_file(out, cfg.site.base_url, page.meta["og:image"]).is_file()
    index = parse_page(out / "index.html")
    assert index.meta["og:type"] == "website"
    assert index.meta["og:image"].startswith(f"{cfg.site.base_url}/2026-11/")   # the newest issue's cover


def test_relative_links_and_images_all_resolve(site):
    """No broken link or image anywhere on the site (links are relative so preview and disk work too)."""
    cfg, issues, result, out = site
    pages = sorted(out.rglob("*.html"))
    assert len(pages) == 1 + 2 + 8          # index, 2 issues, 7 listed + 1 unlisted article
    for page_path in pages:
        for ref in parse_page(page_path).refs:
            if ref.startswith(("https://", "http://", "mailto:", "#")):
                continue
            assert resolve_relative(out, page_path, ref).is_file(), f"{page_path.relative_to(out)}: {ref}"


def test_atom_feed_parses_and_lists_every_public_article(site):
    cfg, issues, result, out = site
    base = cfg.site.base_url
    feed = ET.parse(out / "feed.xml").getroot()
    assert feed.tag == f"{ATOM}feed"
    assert feed.find(f"{ATOM}title").text == cfg.site.title
    entries = feed.findall(f"{ATOM}entry")
    links = [e.find(f"{ATOM}link").get("href") for e in entries]
    expected = [article_url(base, i, a.slug) for i, a in public_pairs(sorted(issues, key=lambda x: x.id, reverse=True))]
    assert links == expected                                     # newest issue first, in article order
    first = entries[0]
    assert first.find(f"{ATOM}title").text == load_issue(cfg, "2026-11").articles[0].title
    assert first.find(f"{ATOM}updated").text == "2026-11-03T10:00:00+09:00"
    content = first.find(f"{ATOM}content")
    assert content.get("type") == "html" and "<strong>성수동 로스터리</strong>" in content.text
    assert f'<img src="{base}/2026-11/seongsu-roastery.jpg"' in content.text     # the card image leads the entry
    assert [l.get("href") for l in first.findall(f"{ATOM}link")] == [links[0]]      # one alternate link per entry


def test_rss_feed_parses_and_lists_every_public_article(site):
    cfg, issues, result, out = site
    channel = ET.parse(out / "rss.xml").getroot().find("channel")
    items = channel.findall("item")
    assert [i.find("link").text for i in items] == [
        article_url(cfg.site.base_url, i, a.slug) for i, a in public_pairs(sorted(issues, key=lambda x: x.id, reverse=True))]
    assert items[0].find("pubDate").text == "Tue, 03 Nov 2026 10:00:00 +0900"
    enclosure = items[0].find("enclosure")
    assert enclosure.get("type") == "image/jpeg"
    assert enclosure.get("url") == asset_url(cfg.site.base_url, "2026-11", "seongsu-roastery.jpg")
    assert int(enclosure.get("length")) == (out / "2026-11" / "seongsu-roastery.jpg").stat().st_size
    assert channel.find("language").text == "ko"


def test_sitemap_lists_every_listed_url_and_nothing_else(site):
    cfg, issues, result, out = site
    base = cfg.site.base_url
    root = ET.parse(out / "sitemap.xml").getroot()
    locs = {u.find(f"{SM}loc").text: u.find(f"{SM}lastmod").text for u in root.findall(f"{SM}url")}
    expected = {base + "/"} | {issue_url(base, i.id) for i in issues} | {
        article_url(base, i, a.slug) for i, a in public_pairs(issues)}
    assert set(locs) == expected == set(result.urls)
    assert locs[issue_url(base, "2026-10")] == "2026-10-06"
    for url in locs:
        assert url_to_file(out, base, url).is_file()
    assert f"Sitemap: {base}/sitemap.xml" in (out / "robots.txt").read_text()


def test_restricted_article_is_unlisted(site):
    """audience: [key, loyal] -> a page for the key customers' email link, but listed nowhere."""
    cfg, issues, result, out = site
    base = cfg.site.base_url
    issue_id, slug = RESTRICTED
    url = article_url(base, issue_id, slug)
    article = next(a for a in load_issue(cfg, issue_id).articles if a.slug == slug)
    assert article.audience == ("key", "loyal")
    page = parse_page(out / issue_id / slug / "index.html")
    assert page.meta["robots"] == "noindex, nofollow"
    assert "단골 고객님께만 보내 드린 기사" in "".join(page.text)
    assert (out / issue_id / article.image).is_file()           # the key customers' email shows it
    assert result.unlisted == [url]
    assert url not in result.urls
    for listed in [out / "index.html", out / issue_id / "index.html", *(out / issue_id).glob("*/index.html")]:
        if listed.parent.name != slug:
            text = listed.read_text(encoding="utf-8")
            assert slug not in text and article.title not in text, listed
    for feed in ("feed.xml", "rss.xml", "sitemap.xml"):
        text = (out / feed).read_text(encoding="utf-8")
        assert slug not in text and article.title not in text, feed


def test_css_keeps_korean_words_whole_and_fits_small_screens(site):
    cfg, issues, result, out = site
    css = (out / "style.css").read_text(encoding="utf-8")
    assert "word-break: keep-all" in css
    page = parse_page(out / "2026-11" / "seongsu-roastery" / "index.html")
    assert page.meta["viewport"] == "width=device-width, initial-scale=1"


def test_body_links_between_issues_are_relative_on_pages_and_absolute_in_feeds(project):
    folder = project / "content" / "2026-11"
    md = folder / "01-seongsu-roastery.md"
    md.write_text(md.read_text(encoding="utf-8") + "\n[지난 호의 에티오피아 원두](../2026-10/01-ethiopia-new-crop.md)도 읽어 보세요.\n"
                  "\n![로스터리 전경](seongsu-roastery.jpg)\n", encoding="utf-8")
    cfg, issues, result = build_example_site(project)
    out = result.out_dir
    html = (out / "2026-11" / "seongsu-roastery" / "index.html").read_text(encoding="utf-8")
    assert 'href="../../2026-10/ethiopia-new-crop/"' in html
    assert 'src="../../2026-11/seongsu-roastery.jpg"' in html
    feed = (out / "feed.xml").read_text(encoding="utf-8")
    assert f"{cfg.site.base_url}/2026-10/ethiopia-new-crop/" in feed


def test_rebuild_drops_removed_articles_and_is_reproducible(project):
    cfg, issues, first = build_example_site(project)
    feed_before = (first.out_dir / "feed.xml").read_bytes()
    cfg, issues, again = build_example_site(project)
    assert (again.out_dir / "feed.xml").read_bytes() == feed_before     # dates come from the issues, not the clock
    (project / "content" / "2026-10" / "03-order-app.md").unlink()
    cfg, issues, result = build_example_site(project)
    assert not (result.out_dir / "2026-10" / "order-app").exists()
    assert "order-app/" not in (result.out_dir / "sitemap.xml").read_text()
    assert result.articles == 6
    assert not list(result.out_dir.parent.glob(".site.*"))              # no staging folder left behind


def test_a_template_error_names_the_file_and_keeps_the_previous_site(project):
    cfg, issues, result = build_example_site(project)
    before = (result.out_dir / "index.html").read_text(encoding="utf-8")
    (project / "templates" / "site" / "issue.html").write_text("{% extends 'base.html' %}{% block main %}{{ nope }}{% endblock %}")
    with pytest.raises(UserError, match=r"issue\.html.*nope"):
        build_example_site(project)
    assert (result.out_dir / "index.html").read_text(encoding="utf-8") == before
    assert (result.out_dir / "2026-11" / "index.html").is_file()
    assert not list(result.out_dir.parent.glob(".site.*"))


def test_empty_archive_still_builds(project, tmp_path):
    cfg, issues, result = build_example_site(project)
    empty = build_site(cfg, [], tmp_path / "empty-site")
    assert empty.issues == 0 and empty.articles == 0
    assert "아직 발행한 호가 없습니다" in (tmp_path / "empty-site" / "index.html").read_text(encoding="utf-8")
    assert ET.parse(tmp_path / "empty-site" / "feed.xml").getroot().findall(f"{ATOM}entry") == []


def test_same_issue_twice_is_a_clear_error(project, tmp_path):
    cfg, issues, result = build_example_site(project)
    with pytest.raises(UserError, match="2026-11"):
        build_site(cfg, issues + [issues[-1]], tmp_path / "dup")


def test_example_images_are_drawn_locally_small_and_card_sized(tmp_path):
    """The example issue's pictures come from content/make_images.py (no downloads) and suit a preview card."""
    import runpy

    from PIL import Image

    root = Path(__file__).resolve().parents[1] / "content"
    runpy.run_path(str(root / "make_images.py"))["main"](tmp_path)
    drawn = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.jpg"))
    assert len(drawn) == 8
    for rel in drawn:
        committed = root / rel
        assert committed.is_file(), rel
        with Image.open(committed) as im:
            assert (im.format, im.size) == ("JPEG", (1200, 630)), rel
        assert committed.stat().st_size < 60 * 1024, rel
        assert (tmp_path / rel).stat().st_size < 60 * 1024, rel
