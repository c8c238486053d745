"""The tracking app over real HTTP (uvicorn on a loopback port), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from _track_helpers import add_deliveries, client, count_events, events, live_server, make_config, suppressions
from newsletter import db
from newsletter.track.app import PIXEL
from newsletter.track.tokens import Signer

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


@pytest.fixture
def env(db_url, tmp_path):
    """A config rooted in tmp_path, its database, three sent deliveries and the signer the server uses."""
    cfg = make_config(tmp_path)
    engine = db.get_engine(db_url)
    ids = add_deliveries(engine, ["kim@example.com", "lee@example.co.kr", "park@example.com"])
    return cfg, engine, ids, Signer.for_config(cfg)


def test_pixel_is_an_uncacheable_gif_and_records_a_human_open(env):
    cfg, engine, ids, signer = env
    with live_server(cfg, engine) as base, client(base) as http:
        r = http.get(f"/o/{signer.recipient('o', ids[0])}.gif", headers={"User-Agent": CHROME})
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/gif"
    assert r.content == PIXEL and r.content.startswith(b"GIF89a")
    assert r.headers["cache-control"] == "no-store, no-cache, must-revalidate, private"
    assert "set-cookie" not in r.headers
    (row,) = events(engine, "open")
    assert (row.delivery_id, row.address, row.issue, row.machine) == (ids[0], "kim@example.com", "2026-11", False)
    assert row.user_agent == CHROME and row.ip == "127.0.0.1"


@pytest.mark.parametrize("headers, reason", [
    ({"User-Agent": "Mozilla/5.0"}, "apple-mpp-user-agent"),
    ({"User-Agent": CHROME, "X-Forwarded-For": "17.58.100.7"}, "apple-proxy-address"),
    ({"User-Agent": "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"}, "prefetch-user-agent"),
])
def test_machine_opens_are_told_apart(env, headers, reason):
    cfg, engine, ids, signer = env
    with live_server(cfg, engine) as base, client(base) as http:
        assert http.get(f"/o/{signer.recipient('o', ids[1])}.gif", headers=headers).status_code == 200
    (row,) = events(engine, "open")
    assert row.machine is True and row.detail == reason


def test_an_open_right_after_delivery_is_a_machine_and_a_later_gmail_proxy_open_is_human(env):
    cfg, engine, ids, signer = env
    (fresh,) = add_deliveries(engine, ["choi@example.com"], sent_at=db.utcnow() - dt.timedelta(seconds=2))
    gmail = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    with live_server(cfg, engine) as base, client(base) as http:
        http.get(f"/o/{signer.recipient('o', fresh)}.gif", headers={"User-Agent": CHROME})
        http.get(f"/o/{signer.recipient('o', ids[0])}.gif", headers={"User-Agent": gmail})
    rows = {r.delivery_id: r for r in events(engine, "open")}
    assert rows[fresh].machine is True and rows[fresh].detail == "right-after-delivery"
    assert rows[ids[0]].machine is False


def test_an_invalid_pixel_token_still_gets_the_gif_but_records_nothing(env):
    cfg, engine, ids, signer = env
    good = signer.recipient("o", ids[0])
    forged = Signer(b"another-secret").recipient("o", ids[0])
    altered = good[:-1] + ("A" if good[-1] != "A" else "B")
    bad = [forged, altered, signer.recipient("u", ids[0]), "o.x.y", "nonsense", "x" * 3000, "%00%ff",
           "o.%C3%A9.abc", good.rsplit(".", 1)[0] + ".%C3%A9"]  # non-ASCII
    with live_server(cfg, engine) as base, client(base) as http:
        for token in bad:
            r = http.get(f"/o/{token}.gif")
            assert (r.status_code, r.content) == (200, PIXEL), token
        assert http.head(f"/o/{good}.gif").status_code == 200  # a HEAD is not an open
    assert events(engine) == []


def test_a_click_is_recorded_and_redirects_to_the_signed_url(env):
    cfg, engine, ids, signer = env
    url = "https://webzine.gaonfoods.example/2026-11/new-roastery/?utm_source=newsletter"
    token = f"{signer.recipient('r', ids[2])}~{signer.link(url)}"
    with live_server(cfg, engine) as base, client(base) as http:
        r = http.get(f"/c/{token}", headers={"User-Agent": CHROME})
    assert r.status_code == 302 and r.headers["location"] == url
    (row,) = events(engine, "click")
    assert (row.delivery_id, row.url, row.address) == (ids[2], url, "park@example.com")


def test_scanner_clicks_still_redirect_are_stored_as_machine_and_never_count_in_the_report(env):
    """A B2B send: one reader clicks, one mailbox's link scanner follows every link, one gateway's UA is known."""
    from newsletter.report import build_report

    cfg, engine, ids, signer = env
    reader, burst, gateway = ids
    base_url = cfg.site.base_url.rstrip("/")
    links = [f"{base_url}/2026-11/{slug}/" for slug in ("roastery", "latte", "bakery")]
    clicks = [  # (delivery, link, user agent), in the order they arrive
        (reader, links[0], CHROME), (reader, links[0], CHROME),                   # a reader, twice the same link
        (gateway, links[1], "Mozilla/5.0 (compatible; Proofpoint URL Defense)"),
        (burst, links[0], CHROME), (burst, links[1], CHROME), (burst, links[2], CHROME),  # every link at once
        (reader, links[1], CHROME),                                                # another article: 2 links, no burst
    ]
    with live_server(cfg, engine) as base, client(base) as http:
        for delivery, link, ua in clicks:
            r = http.get(f"/c/{signer.recipient('r', delivery)}~{signer.link(link)}", headers={"User-Agent": ua})
            assert (r.status_code, r.headers["location"]) == (302, link)  # the person behind a scanner sees nothing
    rows = events(engine, "click")
    assert len(rows) == len(clicks)
    machine = {(r.delivery_id, r.url): r.detail for r in rows if r.machine}
    assert machine == {(gateway, links[1]): "prefetch-user-agent", **{(burst, u): "click-burst" for u in links}}

    with engine.begin() as conn:  # all three are key accounts of one rep
        conn.execute(db.deliveries.update().where(db.deliveries.c.id.in_(ids)).values(key=True, owner="rep-kim"))
    report = build_report(cfg, "2026-11", engine=engine, last=1, articles=[(u.split("/")[-2], u) for u in links])
    human = [link for delivery, link, _ in clicks if delivery == reader]
    o = report.overall
    assert (o.clicks, o.clickers, o.opened, o.machine_clicks) == (len(human), 1, 1, len(clicks) - len(human))
    assert {a.url: a.clicks for a in report.top_articles} == {u: human.count(u) for u in links}
    assert report.as_dict()["overall"]["machine_clicks"] == len(clicks) - len(human)
    quiet = {a.address for a in report.inactive_key_accounts["rep-kim"]}
    assert quiet == {"lee@example.co.kr", "park@example.com"}  # scanner clicks do not hide them from the rep


def test_a_korean_link_redirects_percent_encoded_and_is_stored_as_written(env):
    cfg, engine, ids, signer = env
    url = "https://webzine.gaonfoods.example/2026-11/로스터리/?q=원두#맛"
    with live_server(cfg, engine) as base, client(base) as http:
        r = http.get(f"/c/{signer.recipient('r', ids[0])}~{signer.link(url)}")
    assert r.status_code == 302
    assert r.headers["location"] == ("https://webzine.gaonfoods.example/2026-11/%EB%A1%9C%EC%8A%A4%ED%84%B0%EB%A6%AC/"
                                     "?q=%EC%9B%90%EB%91%90#%EB%A7%9B")
    assert [e.url for e in events(engine, "click")] == [url]


def test_forged_altered_or_malformed_click_tokens_get_404_never_a_redirect(env):
    cfg, engine, ids, signer = env
    r_token = signer.recipient("r", ids[0])
    good_link = signer.link("https://gaonfoods.example/")
    evil = Signer(b"attacker").link("https://evil.example/phish")
    tampered_link = signer.link("https://gaonfoods.example/")[:-2] + "AA"
    bad = [
        f"{r_token}~{evil}",                                        # URL signed by someone else
        f"{r_token}~{tampered_link}",                               # signature altered
        f"{Signer(b'attacker').recipient('r', ids[0])}~{good_link}",  # recipient forged
        f"{signer.recipient('o', ids[0])}~{good_link}",             # wrong purpose
        f"{r_token}~{good_link}~{good_link}", f"{r_token}{good_link}", "~", "garbage",
        f"r.%C3%A9.x~{good_link}", f"{r_token}~%ED%95%9C.x",               # non-ASCII
        f"{r_token}~{signer.link('javascript:alert(1)')}",         # signed, but not a web address
    ]
    with live_server(cfg, engine) as base, client(base) as http:
        for token in bad:
            r = http.get(f"/c/{token}")
            assert r.status_code == 404, token
            assert "location" not in r.headers
            assert "Traceback" not in r.text and len(r.text) < 200
    assert events(engine) == []


def test_unsubscribe_get_only_asks_and_the_one_click_post_suppresses_at_once(env):
    cfg, engine, ids, signer = env
    path = f"/u/{signer.recipient('u', ids[1])}"
    with live_server(cfg, engine) as base, client(base) as http:
        page = http.get(path)
        assert page.status_code == 200
        assert "수신 거부" in page.text and "Unsubscribe" in page.text and 'method="post"' in page.text
        assert "l***@example.co.kr" in page.text and "lee@example.co.kr" not in page.text
        assert suppressions(engine) == [] and events(engine) == []  # a prefetched GET changes nothing

        r = http.post(path, data={"List-Unsubscribe": "One-Click"})  # RFC 8058, form-urlencoded
        assert r.status_code == 200 and "location" not in r.headers and "set-cookie" not in r.headers
        assert "수신 거부" in r.text
        (s,) = suppressions(engine)
        assert (s.address, s.reason, s.source, s.active) == ("lee@example.co.kr", "unsubscribed", "tracking", True)

        assert http.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200  # again: no change
    assert len(suppressions(engine)) == 1
    (e,) = events(engine, "unsubscribe")
    assert (e.delivery_id, e.address) == (ids[1], "lee@example.co.kr")


def test_one_click_unsubscribe_as_multipart(env):
    cfg, engine, ids, signer = env
    with live_server(cfg, engine) as base, client(base) as http:
        r = http.post(f"/u/{signer.recipient('u', ids[0])}", files={"List-Unsubscribe": (None, "One-Click")})
    assert r.status_code == 200
    assert [s.address for s in suppressions(engine)] == ["kim@example.com"]


def test_unsubscribe_refuses_bad_tokens_content_types_and_huge_bodies(env):
    cfg, engine, ids, signer = env
    path = f"/u/{signer.recipient('u', ids[0])}"
    with live_server(cfg, engine) as base, client(base) as http:
        assert http.get(f"/u/{signer.recipient('o', ids[0])}").status_code == 404
        assert http.get("/u/u.%C3%A9.x").status_code == 404
        assert http.post(f"/u/{Signer(b'x').recipient('u', ids[0])}", data={"List-Unsubscribe": "One-Click"}).status_code == 404
        assert http.post(f"/u/{signer.recipient('u', 999999)}", data={"List-Unsubscribe": "One-Click"}).status_code == 404
        r = http.post(path, json={"List-Unsubscribe": "One-Click"})
        assert r.status_code == 415 and "Traceback" not in r.text
        r = http.post(path, content=b"List-Unsubscribe=" + b"x" * 200_000,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 413
        r = http.post(path, content=b"--nope\r\ngarbage", headers={"Content-Type": "multipart/form-data; boundary=b"})
        assert r.status_code == 400 and "Traceback" not in r.text
    assert suppressions(engine) == [] and events(engine) == []


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "build" / "site"
    article = root / "2026-11" / "new-roastery"
    article.mkdir(parents=True)
    (root / "index.html").write_text("<html><body>가온레터</body></html>", encoding="utf-8")
    (root / "2026-11" / "index.html").write_text("<html><body>11월호</body></html>", encoding="utf-8")
    (article / "index.html").write_text(
        '<html><head><link rel="canonical" href="https://webzine.gaonfoods.example/2026-11/new-roastery/">'
        "</head><body>성수 로스터리</body></html>", encoding="utf-8")
    (root / "feed.xml").write_text("<feed/>", encoding="utf-8")
    return root


def test_the_archive_is_served_and_ref_links_record_a_visit_without_cookies(env, site):
    cfg, engine, ids, signer = env
    with live_server(cfg, engine) as base, client(base) as http:
        assert "가온레터" in http.get("/").text
        assert "11월호" in http.get("/2026-11/").text
        r = http.get("/2026-11/new-roastery/?ref=rep-kim", headers={"User-Agent": CHROME})
        assert r.status_code == 200 and "성수 로스터리" in r.text
        assert 'href="https://webzine.gaonfoods.example/2026-11/new-roastery/"' in r.text
        assert "set-cookie" not in r.headers
        etag = r.headers["etag"]
        # a directory URL without its slash is redirected, keeping the ref
        r = http.get("/2026-11/new-roastery?ref=rep-kim")
        assert r.status_code in (301, 302, 307) and r.headers["location"].endswith("/2026-11/new-roastery/?ref=rep-kim")
        http.get("/2026-11/?ref=rep-park", headers={"User-Agent": CHROME})
        http.get("/2026-11/new-roastery/?ref=rep-kim", headers={"User-Agent": "facebookexternalhit/1.1 kakaotalk-scrap/1.0"})
        r = http.get("/2026-11/new-roastery/?ref=rep-lee", headers={"User-Agent": CHROME, "If-None-Match": etag})
        assert r.status_code == 304  # the browser had the page: still a visit
        for bad in ("<script>", "a b", "x" * 65, ""):
            assert http.get("/2026-11/new-roastery/", params={"ref": bad}).status_code == 200
        assert http.get("/feed.xml?ref=rep-kim").status_code == 200  # not a page: no visit
        assert http.get("/2026-12/?ref=rep-kim").status_code == 404
        r = http.get("/../config.yaml")
        assert r.status_code == 404
    visits = [(v.rep, v.issue, v.url, v.machine) for v in events(engine, "visit")]
    assert visits == [
        ("rep-kim", "2026-11", "/2026-11/new-roastery/", False),
        ("rep-park", "2026-11", "/2026-11/", False),
        ("rep-kim", "2026-11", "/2026-11/new-roastery/", True),  # KakaoTalk's link preview, not a customer
        ("rep-lee", "2026-11", "/2026-11/new-roastery/", False),
    ]


def test_healthz_and_short_text_errors(env):
    cfg, engine, ids, signer = env
    with live_server(cfg, engine) as base, client(base) as http:
        assert (http.get("/healthz").status_code, http.get("/healthz").text.strip()) == (200, "ok")
        for method, path in [("GET", "/nothing-here"), ("DELETE", "/healthz"), ("PUT", f"/u/{signer.recipient('u', 1)}")]:
            r = http.request(method, path)
            assert 400 <= r.status_code < 500 and "Traceback" not in r.text and len(r.text) < 200


def test_no_event_is_lost_under_concurrent_load(env):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    cfg, engine, ids, signer = env
    paths = [f"/o/{signer.recipient('o', ids[i % 3])}.gif" for i in range(300)]
    paths += [f"/c/{signer.recipient('r', ids[i % 3])}~{signer.link(f'https://gaonfoods.example/{i}')}" for i in range(100)]
    local = threading.local()

    with live_server(cfg, engine) as base:
        def get(path: str) -> int:  # 16 keep-alive connections in parallel
            if not hasattr(local, "http"):
                local.http = httpx.Client(base_url=base, headers={"User-Agent": CHROME})
            return local.http.get(path).status_code

        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(get, paths))
    assert codes.count(200) == 300 and codes.count(302) == 100
    assert count_events(engine, "open") == 300 and count_events(engine, "click") == 100
    assert sorted(r.url for r in events(engine, "click")) == sorted(f"https://gaonfoods.example/{i}" for i in range(100))
