"""``newsletter preview`` over real HTTP: serves build/, rebuilds on save, survives a bad save."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from newsletter.config import load_config
from newsletter.errors import UserError
from newsletter.preview import Preview


def wait_for(predicate, timeout=15.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


@pytest.fixture
def preview(project):
    lines: list[str] = []
    server = Preview(load_config(project / "config.yaml"), port=0, interval=0.1, log=lines.append).start()
    server.lines = lines
    yield server
    server.stop()


def get(server: Preview, path: str) -> httpx.Response:
    return httpx.get(server.url.rstrip("/") + path, timeout=5)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_serves_the_site_and_the_emails(preview):
    assert preview.lines[0] == f"serving {preview.build_dir} at {preview.url} (web archive: {preview.url}site/)"
    assert preview.lines[1].startswith("rebuilt in") and "e-mail 2026-11;" in preview.lines[1]
    page = get(preview, "/site/2026-11/seongsu-roastery/")
    assert page.status_code == 200 and "성수동에 새 로스터리를 열었습니다" in page.text
    assert page.headers["cache-control"] == "no-store"
    image = get(preview, "/site/2026-11/seongsu-roastery.jpg")
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    landing = get(preview, "/")
    assert 'href="/site/"' in landing.text and 'href="/2026-11/email.html"' in landing.text
    assert 'href="/2026-11/key-loyal/email.html"' in landing.text
    assert get(preview, "/site/2026-10/").status_code == 200


def test_email_is_shown_with_sample_values_and_local_images(preview):
    email = get(preview, "/2026-11/email.html")
    assert email.status_code == 200
    assert "%%" not in email.text                                   # placeholders filled for the browser
    on_disk = (preview.build_dir / "2026-11" / "email.html").read_text(encoding="utf-8")
    assert "%%unsubscribe_url%%" in on_disk                          # ... but not in the build itself
    images = [src for src in __import__("re").findall(r'<img[^>]+src="([^"]+)"', email.text) if src.startswith("/site/")]
    assert len(images) >= 4
    for src in images:
        assert get(preview, src).status_code == 200, src


def test_a_saved_change_shows_up_and_open_pages_are_told_to_reload(preview, project):
    version = int(get(preview, "/__preview/version").text)
    edit(project / "content" / "2026-11" / "01-seongsu-roastery.md",
         "title: 성수동에 새 로스터리를 열었습니다", "title: 성수동 로스터리, 문을 열었습니다")
    wait_for(lambda: int(get(preview, "/__preview/version").text) > version)
    assert "성수동 로스터리, 문을 열었습니다" in get(preview, "/site/2026-11/seongsu-roastery/").text
    assert "성수동 로스터리, 문을 열었습니다" in get(preview, "/2026-11/email.html").text
    assert "e-mail 2026-11;" in preview.lines[-1], preview.lines    # only the edited issue's e-mail rebuilt
    assert "/__preview/version" in get(preview, "/site/").text      # the reload script is in served pages


def test_a_bad_save_keeps_the_last_good_build_and_says_why_in_one_line(preview, project):
    article = project / "content" / "2026-11" / "02-yuzu-honey-latte.md"
    edit(article, "image: yuzu-honey-latte.jpg", "image: yuzu-latte-missing.jpg")
    line = wait_for(lambda: next((l for l in preview.lines if l.startswith("rebuild failed")), None))
    assert "\n" not in line
    assert "02-yuzu-honey-latte.md" in line and "image" in line and "yuzu-latte-missing.jpg" in line
    page = get(preview, "/site/2026-11/yuzu-honey-latte/")
    assert page.status_code == 200 and 'src="../yuzu-honey-latte.jpg"' in page.text
    edit(article, "image: yuzu-latte-missing.jpg", "image: yuzu-honey-latte.jpg")
    wait_for(lambda: preview.last_error is None and preview.lines[-1].startswith("rebuilt"))


def test_a_preflight_error_stops_the_rebuild_as_build_would(preview, project):
    edit(project / "content" / "2026-11" / "issue.md", "subject: 성수 새 로스터리 오픈과 겨울 신메뉴 레시피",
         'subject: "[광고] 성수 새 로스터리 오픈과 겨울 신메뉴 레시피"')
    line = wait_for(lambda: next((l for l in preview.lines if l.startswith("rebuild failed")), None))
    assert "content/2026-11/issue.md: subject:" in line and "[광고]" in line
    assert "[광고]" not in get(preview, "/2026-11/email.html").text


def test_a_template_change_rebuilds_the_newest_email_and_the_site(preview, project):
    version = preview.version
    css = project / "templates" / "site" / "style.css"
    css.write_text(css.read_text(encoding="utf-8") + "\n.preview-test { color: red; }\n", encoding="utf-8")
    wait_for(lambda: preview.version > version)
    assert ".preview-test" in get(preview, "/site/style.css").text
    assert "e-mail 2026-11;" in preview.lines[-1]


def test_files_outside_build_are_not_served(preview):
    for path in ("/../config.yaml", "/%2e%2e/config.yaml", "/..%2fconfig.yaml"):
        response = get(preview, path)
        assert response.status_code == 404, path
        assert "company:" not in response.text


def test_a_busy_port_is_a_clear_error(preview, project):
    other = Preview(load_config(project / "config.yaml"), port=preview.port, log=lambda line: None)
    with pytest.raises(UserError, match=f"cannot listen on 127.0.0.1:{preview.port}.*--port"):
        other.start()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_command_serves_until_interrupted(project):
    """The real command: a person runs it, opens the site, presses Ctrl-C once it says it is watching."""
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "newsletter", "preview", "--port", str(port),
                             "--config", str(project / "config.yaml")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            # a runner started in the background may ignore SIGINT, and children inherit that
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any(l.startswith("watching") for l in lines) or proc.poll() is not None, timeout=30)
        assert proc.poll() is None, "".join(lines)
        assert httpx.get(f"http://127.0.0.1:{port}/site/", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        reader.join(timeout=5)
    out = "".join(lines)
    assert f"http://127.0.0.1:{port}/" in out, out
    assert out.rstrip().endswith("stopped") and proc.returncode == 0, out
    assert "Traceback" not in out
    assert (project / "build" / "site" / "index.html").is_file()


def test_editor_scratch_files_do_not_trigger_a_rebuild(project):
    from newsletter.preview import changed_issues, snapshot

    cfg = load_config(project / "config.yaml")
    before = snapshot(cfg)
    folder = project / "content" / "2026-10"
    for name in (".01-ethiopia-new-crop.md.swp", "01-ethiopia-new-crop.md~", "#issue.md#"):
        (folder / name).write_text("scratch", encoding="utf-8")
    assert snapshot(cfg) == before
    (folder / "04-new.md").write_text("---\n---\n", encoding="utf-8")
    after = snapshot(cfg)
    assert changed_issues(cfg, before, after) == ["2026-10"]
    (project / "templates" / "site" / "style.css").write_text("body{}", encoding="utf-8")
    assert changed_issues(cfg, after, snapshot(cfg)) is None
