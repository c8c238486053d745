"""``newsletter preview``: serve ``build/`` on 127.0.0.1 and rebuild when content or templates change.

An editor keeps the browser open beside the Markdown: every save under ``content/``, ``templates/`` or
to ``config.yaml`` rebuilds the affected e-mails and the whole web archive, and open pages reload by
themselves. A failed rebuild prints one line and the last good build stays served (both builds write
beside the old output and swap it in at the end).

What the server adds on top of the files, for the preview only (nothing is written to ``build/``):
``/`` lists the site and each built e-mail; e-mails get their ``%%field%%`` placeholders filled with
sample values and their site image URLs pointed at ``/site/``, so the pictures show offline; HTML pages
get a small script that reloads them after a rebuild.

Watching is plain polling of modification times (two cores, a few dozen files: cheaper and more
portable than inotify bindings).
"""

from __future__ import annotations

import html
import sys
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

from .config import load_config
from .content import list_issues, load_issue
from .errors import UserError

VERSION_PATH = "/__preview/version"
RELOAD_SCRIPT = """<script>/* newsletter preview: reload after a rebuild */
(function(){var v=null;setInterval(function(){fetch('%s',{cache:'no-store'}).then(function(r){return r.text()})
.then(function(t){if(v!==null&&t!==v){location.reload()}v=t}).catch(function(){})},1000)})();</script>
""" % VERSION_PATH


@dataclass
class RebuildResult:
    """One rebuild: which issues' e-mails were built, preflight warnings, site pages, how long it took."""

    emails: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    site_pages: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        emails = ", ".join(self.emails) or "none"
        line = f"rebuilt in {self.seconds:.2f} s: e-mail {emails}; site {self.site_pages} pages"
        if self.warnings:
            line += f"; {len(self.warnings)} warning(s), first: {self.warnings[0]}"
        return line


def rebuild(cfg, issue_ids: list[str] | None = None) -> RebuildResult:
    """What ``newsletter build`` does, for the e-mails of ``issue_ids`` (None: the newest issue, the one
    being written; older e-mails are rebuilt when their files change) and the whole site: preflight,
    write ``build/<issue>/``, write ``build/site/``. A preflight error stops the rebuild with that error
    (and how many more) as a UserError, like the build command."""
    from .check import preflight
    from .render import write_built
    from .site import build_site

    started = time.perf_counter()
    ids = list_issues(cfg)
    result = RebuildResult()
    for issue_id in ids[-1:] if issue_ids is None else [i for i in issue_ids if i in ids]:
        report = preflight(cfg, issue_id)
        if report.errors:
            more = f" (and {len(report.errors) - 1} more: newsletter check {issue_id})" if len(report.errors) > 1 else ""
            raise UserError(f"{report.errors[0].file}: {report.errors[0].field}: {report.errors[0].message}{more}")
        write_built(cfg, report.rendered)
        result.emails.append(issue_id)
        result.warnings += [str(w) for w in report.warnings]
    site = build_site(cfg, [load_issue(cfg, issue_id) for issue_id in ids], cfg.path(cfg.paths.build) / "site")
    result.site_pages = len(site.urls) + len(site.unlisted)
    result.seconds = time.perf_counter() - started
    return result


# --- watching ------------------------------------------------------------------------------------------


Snapshot = dict[Path, tuple[int, int]]


def snapshot(cfg) -> Snapshot:
    """(mtime, size) of every file the build reads: config.yaml, content/, templates/."""
    files: Snapshot = {}
    config_file = cfg.root / Path(cfg.source).name
    roots = [cfg.path(cfg.paths.content), cfg.path(cfg.paths.templates)]
    candidates = [config_file] + [p for root in roots if root.is_dir() for p in root.rglob("*")]
    for path in candidates:
        try:
            st = path.stat()
        except OSError:          # deleted between listing and stat
            continue
        if path.is_file() and not _editor_scratch(path.name) and "__pycache__" not in path.parts:
            files[path] = (st.st_mtime_ns, st.st_size)
    return files


def _editor_scratch(name: str) -> bool:
    """Swap, lock and backup files editors write beside the real one (.x.swp, .#x, #x#, x~)."""
    return name.startswith((".", "#", "~")) or name.endswith("~")


def changed_issues(cfg, before: Snapshot, after: Snapshot) -> list[str] | None:
    """Issue ids whose folders changed; None (the newest issue) when something shared changed: config, templates."""
    content = cfg.path(cfg.paths.content).resolve()
    ids: set[str] = set()
    for path in set(before) ^ set(after) | {p for p in before.keys() & after.keys() if before[p] != after[p]}:
        try:
            rel = path.resolve().relative_to(content)
        except ValueError:
            return None
        if len(rel.parts) >= 2:
            ids.add(rel.parts[0])
    return sorted(ids)


# --- serving ---------------------------------------------------------------------------------------------


def _landing_page(build_dir: Path) -> str:
    items = []
    if (build_dir / "site" / "index.html").is_file():
        items.append('<li><a href="/site/">웹 아카이브 (web archive)</a></li>')
    for manifest in sorted(build_dir.glob("*/manifest.json"), reverse=True):
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        issue_id = manifest.parent.name
        for name, variant in data.get("variants", {}).items():
            tiers = ", ".join(variant.get("tiers", []))
            items.append(f'<li><a href="/{html.escape(issue_id)}/{html.escape(variant["html"])}">'
                         f'{html.escape(issue_id)} e-mail — {html.escape(name)}</a> <small>({html.escape(tiers)})</small></li>')
    body = "\n".join(items) or "<li>아직 빌드된 것이 없습니다 (nothing built yet).</li>"
    return (f'<!doctype html><html lang="ko"><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
            f'<title>newsletter preview</title><body style="font-family:sans-serif;max-width:640px;margin:40px auto;'
            f'padding:0 16px;line-height:1.8;word-break:keep-all"><h1>미리 보기</h1><ul>{body}</ul></body></html>')


class _Handler(SimpleHTTPRequestHandler):
    preview: "Preview"

    def log_message(self, format, *args):   # noqa: A002 - the stdlib's name
        pass                                 # quiet: the editor watches rebuild lines, not requests

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def do_GET(self):
        path = unquote(urlsplit(self.path).path)
        if path == VERSION_PATH:
            return self._send(str(self.preview.version).encode(), "text/plain; charset=utf-8")
        if path == "/":
            return self._send(self.preview.inject(_landing_page(self.preview.build_dir)).encode("utf-8"))
        target = Path(self.translate_path(self.path))
        if target.is_dir() and path.endswith("/"):
            target = target / "index.html"
        if target.suffix == ".html" and target.is_file():
            text = target.read_text(encoding="utf-8")
            if target.name == "email.html":
                text = self.preview.email_for_browser(text)
            return self._send(self.preview.inject(text).encode("utf-8"))
        return super().do_GET()

    def _send(self, body: bytes, content_type: str = "text/html; charset=utf-8"):
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A browser that went away mid-response is normal; anything else gets one line, not a traceback."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError):
            print(f"preview: error serving {client_address[0]}: {type(exc).__name__}: {exc}", file=sys.stderr)


class Preview:
    """The preview server and its watcher; ``start()`` builds once, then serves and watches in threads."""

    def __init__(self, cfg, *, host: str = "127.0.0.1", port: int = 8000, interval: float = 0.5,
                 builder: Callable[..., RebuildResult] = rebuild, log: Callable[[str], None] = print):
        self.cfg = cfg
        self.host, self.port = host, port
        self.interval = interval
        self.builder = builder
        self.log = log
        self.version = 0                    # successful builds so far (pages poll it to reload)
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def build_dir(self) -> Path:
        return self.cfg.path(self.cfg.paths.build)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    # -- building --

    def build(self, issue_ids: list[str] | None = None) -> bool:
        """One rebuild; on failure log one line and keep the last good build. True when it succeeded."""
        try:
            result = self.builder(self.cfg, issue_ids)
        except UserError as exc:
            self.last_error = str(exc)
        except Exception as exc:  # a template or compiler error must not stop the preview
            self.last_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        else:
            self.last_error = None
            self.log(result.line())
            self.version += 1
            return True
        self.log(f"rebuild failed (still serving the last good build): {self.last_error}")
        return False

    def _reload_config(self) -> bool:
        try:
            self.cfg = load_config(self.cfg.root / Path(self.cfg.source).name)
            return True
        except UserError as exc:
            self.last_error = str(exc)
            self.log(f"rebuild failed (still serving the last good build): {exc}")
            return False

    def watch(self, seen: Snapshot) -> None:
        """Poll for changes against ``seen`` (taken before the last build); wait until the files stop
        changing (an editor saving several), then rebuild."""
        while not self._stop.wait(self.interval):
            now = snapshot(self.cfg)
            if now == seen:
                continue
            while not self._stop.wait(self.interval):
                settled = snapshot(self.cfg)
                if settled == now:
                    break
                now = settled
            issues = changed_issues(self.cfg, seen, now)
            seen = now
            if issues is None and not self._reload_config():
                continue
            self.build(issues)

    # -- serving --

    def email_for_browser(self, text: str) -> str:
        """Sample values for the placeholders; site images from this server, so they show offline."""
        from .render.eml import fill, preview_values

        base = re.escape(self.cfg.site.base_url.rstrip("/"))
        text = re.sub(rf'(\s(?:src|href)=")({base})/', r"\1/site/", text)
        return fill(text, preview_values(self.cfg))

    def inject(self, page: str) -> str:
        cut = page.rfind("</body>")
        return page[:cut] + RELOAD_SCRIPT + page[cut:] if cut >= 0 else page + RELOAD_SCRIPT

    def start(self) -> "Preview":
        self.build_dir.mkdir(parents=True, exist_ok=True)
        handler = type("PreviewHandler", (_Handler,), {"preview": self})
        try:
            server = _Server((self.host, self.port),
                                         lambda *a, **kw: handler(*a, directory=str(self.build_dir), **kw))
        except OSError as exc:
            raise UserError(f"cannot listen on {self.host}:{self.port} ({exc.strerror}); try another --port") from None
        self._server = server
        self.port = server.server_address[1]
        self.log(f"serving {self.build_dir} at {self.url} (web archive: {self.url}site/)")
        before = snapshot(self.cfg)
        self.build(None)
        for target, args in ((server.serve_forever, ()), (self.watch, (before,))):
            thread = threading.Thread(target=target, args=args, daemon=True, name=f"preview-{target.__name__}")
            thread.start()
            self._threads.append(thread)
        self.log("watching content/, templates/ and config.yaml; Ctrl-C stops")
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> "Preview":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait(self) -> None:
        """Block until interrupted (Ctrl-C, the normal way to stop a preview)."""
        try:
            while not self._stop.wait(1):
                pass
        except KeyboardInterrupt:
            self.log("stopped")
        finally:
            self.stop()
