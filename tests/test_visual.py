"""The e-mail and the web pages as a person sees them: headless Chromium at 375 px (a phone) and 600 px
(the e-mail's full width). Fails on horizontal scrolling or a broken image; leaves full-page screenshots
in build/screenshots/ for a human to look at.

The e-mail's images point at the site's absolute URLs, which do not exist offline, so the example
project is built with ``site.base_url`` set to a local HTTP server that serves that build.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import threading
import warnings
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from newsletter.config import load_config
from newsletter.preview import rebuild
from newsletter.render import load_built
from newsletter.render.eml import fill, preview_values

from _chromium import Chromium

pytestmark = pytest.mark.chromium

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "build" / "screenshots"
ISSUE = "2026-11"
WIDTHS = (375, 600)
# page -> images a reader must see at least (article pictures; e-mails also carry the open pixel)
MIN_IMAGES = {"email-all": 4, "email-key-loyal": 5, "article-yuzu-honey-latte": 1,
              "article-cupping-invitation": 1, "site-issue": 4, "site-index": 2}


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The example project built against a local server; returns {page name: URL}."""
    project = tmp_path_factory.mktemp("visual") / "project"
    project.mkdir()
    for name in ("content", "templates"):
        shutil.copytree(ROOT / name, project / name)
    build = project / "build"
    build.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(build)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    config = (ROOT / "config.yaml").read_text(encoding="utf-8")
    site_line = "  base_url: https://webzine.gaonfoods.example\n"
    assert site_line in config
    (project / "config.yaml").write_text(config.replace(site_line, f"  base_url: {base}/site\n"), encoding="utf-8")
    cfg = load_config(project / "config.yaml")
    rebuild(cfg)                                        # preflight + e-mails + site, as `newsletter build` does
    pages = {}
    built = load_built(cfg, ISSUE)
    for name, variant in built.variants.items():      # placeholders filled as the send step would
        filled = variant.html_path.with_name("email.filled.html")
        filled.write_text(fill(variant.html, preview_values(cfg)), encoding="utf-8")
        pages[f"email-{name}"] = f"{base}/{filled.relative_to(build).as_posix()}"
    pages["site-index"] = f"{base}/site/"
    pages["site-issue"] = f"{base}/site/{ISSUE}/"
    pages["article-yuzu-honey-latte"] = f"{base}/site/{ISSUE}/yuzu-honey-latte/"
    pages["article-cupping-invitation"] = f"{base}/site/{ISSUE}/cupping-invitation/"
    yield pages
    server.shutdown()
    server.server_close()


def _korean_font_missing() -> bool:
    try:
        out = subprocess.run(["fc-list", ":lang=ko", "family"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return True
    return not out.strip()


@pytest.fixture(scope="module")
def chromium():
    if _korean_font_missing():   # the checks still hold (a missing glyph is as wide as a Hangul one)
        warnings.warn("no Korean font installed: the screenshots will show boxes instead of Hangul "
                      "(Debian: apt-get install fonts-nanum)")
    browser = Chromium()
    yield browser
    browser.close()


def test_both_email_variants_are_covered(served):
    assert {"email-all", "email-key-loyal"} <= set(served)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page", list(MIN_IMAGES))
def test_page_fits_the_screen_and_every_image_loads(served, chromium, page, width):
    shot = SCREENSHOTS / f"{page}-{width}.png"
    m = chromium.render(served[page], width, shot)
    assert shot.is_file() and shot.stat().st_size > 10_000
    assert m["innerWidth"] == width
    assert m["scrollWidth"] <= m["innerWidth"], f"horizontal scrolling at {width}px: {m['overflowing']}"
    assert m["images"] >= MIN_IMAGES[page]
    assert m["pending"] == [], f"images still loading: {m['pending']}"
    assert m["broken"] == [], f"broken images: {m['broken']}"
    assert m["noAlt"] == []
