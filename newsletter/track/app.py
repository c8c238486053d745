"""The tracking web app: open pixel, click redirects, unsubscribe, SendGrid webhook and the web archive.

One Starlette app, stateless but for the database. Every answer to bad input is a short text with a
4xx status (never a traceback). Opens, clicks and visits are queued and written in batches
(``events.HitWriter``); unsubscribes and webhook events are committed before the answer. No cookies
are ever set.
"""

from __future__ import annotations

import base64
import html
import logging
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from .. import db
from ..config import Config
from . import events as ev
from . import webhook
from .tokens import Signer

log = logging.getLogger("newsletter.track")

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")  # 1x1 transparent GIF
NO_STORE = {"Cache-Control": "no-store, no-cache, must-revalidate, private", "Pragma": "no-cache", "Expires": "0"}
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_FORM_BYTES = 64 * 1024
REF = re.compile(r"^[\w.-]{1,64}$")  # a sales rep id such as "rep-kim": no spaces, quotes or markup


@dataclass
class Tracker:
    """What the handlers share: config, database, token signer, batch writer, webhook verifier."""

    cfg: Config
    engine: Engine
    signer: Signer
    writer: ev.HitWriter
    verifier: webhook.Verifier | None

    # Tokens are ASCII; anything else from a URL is refused here, before the signer (which expects ASCII).
    def recipient(self, purpose: str, token: str) -> int | None:
        return self.signer.read_recipient(purpose, token) if token.isascii() else None

    def click(self, token: str) -> tuple[int, str] | None:
        return self.signer.read_click(token) if token.isascii() else None


def _client(request: Request) -> tuple[str, str]:
    ip = request.client.host if request.client else ""
    return ip, request.headers.get("user-agent", "")


def _text(status: int, message: str) -> PlainTextResponse:
    return PlainTextResponse(message + "\n", status_code=status, headers=NO_STORE)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (checked before and while reading)."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise HTTPException(400, "bad Content-Length")
        if int(length) > limit:
            raise HTTPException(413, f"request body too large (limit {limit} bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"request body too large (limit {limit} bytes)")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # Starlette's own cache: request.form() then parses these bytes, not the spent stream
    return body


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


# --- open pixel and clicks -------------------------------------------------------------------------


PIXEL_START = {
    "type": "http.response.start", "status": 200,
    "headers": [(b"content-type", b"image/gif"), (b"content-length", str(len(PIXEL)).encode())]
    + [(k.lower().encode(), v.encode()) for k, v in NO_STORE.items()],
}
PIXEL_BODY = {"type": "http.response.body", "body": PIXEL}


class Pixel:
    """The 1x1 GIF, always (a broken image helps nobody); an open is recorded only for a valid token.

    A bare ASGI app (a class, so Starlette's Route does not wrap it in Request/Response objects): it is
    by far the busiest URL.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracker: Tracker = scope["app"].state.tracker
        delivery_id = tracker.recipient("o", scope["path_params"]["token"])
        if delivery_id is not None and scope["method"] == "GET":  # a HEAD is not an open
            ua = next((v for k, v in scope["headers"] if k == b"user-agent"), b"").decode("latin-1")
            ip = scope["client"][0] if scope.get("client") else ""
            await tracker.writer.record(ev.open_hit(delivery_id, ip, ua))
        await send(PIXEL_START)
        await send(PIXEL_BODY)


async def click(request: Request) -> Response:
    """Record the click and redirect to the URL the token signed; anything else is 404, never a redirect."""
    tracker: Tracker = request.app.state.tracker
    parsed = tracker.click(request.path_params["token"])
    if parsed is None or urlsplit(parsed[1]).scheme.lower() not in ("http", "https"):
        return _text(404, "Not Found: this link is not valid.")
    delivery_id, url = parsed
    if request.method == "GET":  # link checkers' HEAD requests are not clicks
        ip, ua = _client(request)
        await tracker.writer.record(ev.click_hit(delivery_id, url, ip, ua))
    return RedirectResponse(url, status_code=302, headers=NO_STORE)


# --- unsubscribe -----------------------------------------------------------------------------------

PAGE = """<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;line-height:1.6;color:#222}}
button{{font-size:1rem;padding:.6rem 1.4rem;border:0;border-radius:4px;background:#333;color:#fff;cursor:pointer}}
.en{{color:#666}}</style></head>
<body><h1>{title}</h1>{body}<p class="en"><small>{company}</small></p></body></html>
"""

CONFIRM = """<p>{address} 주소로 보내 드리는 {company} 웹진 수신을 거부하시겠습니까?</p>
<p class="en">Unsubscribe {address} from the {company} newsletter?</p>
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">수신 거부 / Unsubscribe</button></form>"""

DONE = """<p>{address} 주소의 수신 거부가 처리되었습니다. 앞으로 웹진을 보내 드리지 않습니다.</p>
<p class="en">{address} has been unsubscribed. You will not receive the newsletter any more.</p>"""

INVALID = """<p>이 수신 거부 링크를 확인할 수 없습니다. 메일에 있는 링크 전체를 사용해 주세요.</p>
<p class="en">This unsubscribe link is not valid. Please use the complete link from the e-mail.</p>"""


def mask(address: str) -> str:
    """Enough of the address for the reader to recognise it, not enough to harvest it from a forwarded link."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def _page(tracker: Tracker, title: str, body: str, status: int = 200, **values) -> HTMLResponse:
    company = html.escape(tracker.cfg.company.name)
    fields = {k: html.escape(v) for k, v in values.items()}
    content = PAGE.format(title=title, company=company, body=body.format(company=company, **fields))
    return HTMLResponse(content, status_code=status, headers=NO_STORE)


def _invalid(tracker: Tracker) -> HTMLResponse:
    return _page(tracker, "수신 거부 / Unsubscribe", INVALID, status=404)


async def unsubscribe_page(request: Request) -> Response:
    """GET: a confirmation page only. Link scanners prefetch GETs, so a GET must change nothing."""
    tracker: Tracker = request.app.state.tracker
    delivery_id = tracker.recipient("u", request.path_params["token"])
    if delivery_id is None:
        return _invalid(tracker)
    delivery = await run_in_threadpool(ev.retrying, ev.find_delivery, tracker.engine, delivery_id)
    if delivery is None:
        return _invalid(tracker)
    return _page(tracker, "수신 거부 / Unsubscribe", CONFIRM, address=mask(delivery.address))


async def unsubscribe(request: Request) -> Response:
    """POST: the confirmation form or an RFC 8058 one-click POST; suppresses at once, 200, no redirect."""
    tracker: Tracker = request.app.state.tracker
    delivery_id = tracker.recipient("u", request.path_params["token"])
    if delivery_id is None:
        return _invalid(tracker)
    body = await read_body(request, MAX_FORM_BYTES)
    if body:
        if _media_type(request) not in FORM_TYPES:
            return _text(415, "Unsupported Media Type: send a form (List-Unsubscribe=One-Click).")
        await request.form(max_files=0, max_fields=20)  # 400 for a malformed form
    ip, ua = _client(request)
    done = await run_in_threadpool(ev.retrying, ev.record_unsubscribe, tracker.engine, delivery_id, ip, ua)
    if done is None:
        return _invalid(tracker)
    return _page(tracker, "수신 거부 완료 / Unsubscribed", DONE, address=mask(done.address))


# --- SendGrid webhook ------------------------------------------------------------------------------


async def sendgrid_webhook(request: Request) -> Response:
    """Check type, size and signature before parsing anything; then store the batch (see ``webhook``)."""
    tracker: Tracker = request.app.state.tracker
    if _media_type(request) != "application/json":
        return _text(415, "Unsupported Media Type: expected application/json.")
    body = await read_body(request, webhook.MAX_BODY_BYTES)
    if tracker.verifier is None:
        return _text(503, "webhook public key not configured (SENDGRID_WEBHOOK_PUBLIC_KEY)")
    try:
        tracker.verifier.check(body, request.headers.get(webhook.SIGNATURE_HEADER),
                               request.headers.get(webhook.TIMESTAMP_HEADER))
    except webhook.SignatureError as exc:
        return _text(exc.status, f"refused: {exc}")
    try:
        items = webhook.parse(body)
    except ValueError as exc:  # JSONDecodeError is a ValueError
        return _text(400, f"Bad Request: {str(exc).splitlines()[0]}")
    result = await run_in_threadpool(ev.retrying, webhook.ingest, tracker.engine, tracker.cfg, tracker.signer, items)
    return _text(200, f"ok: {result.stored} stored, {result.duplicates} duplicate, {result.ignored} ignored")


# --- health ----------------------------------------------------------------------------------------


def _ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


async def healthz(request: Request) -> Response:
    tracker: Tracker = request.app.state.tracker
    await run_in_threadpool(ev.retrying, _ping, tracker.engine, deadline=2.0)
    return _text(200, "ok")


# --- web archive -----------------------------------------------------------------------------------


def _is_page(path: str, start: dict) -> bool:
    """An HTML page served (200), or one the browser already has (304, which carries no Content-Type)."""
    if start["status"] == 304:
        return path.endswith(("/", ".html"))
    headers = dict(start.get("headers", []))
    return start["status"] == 200 and headers.get(b"content-type", b"").startswith(b"text/html")


def _issue_of(path: str) -> str | None:
    """/<issue>/ and /<issue>/<article>/ belong to an issue; /index.html does not."""
    parts = [p for p in path.split("/") if p]
    return parts[0] if parts and (path.endswith("/") or len(parts) > 1) else None


class Archive:
    """The built web archive (``build/site/``); ``?ref=<rep>`` on a page records a visit for that rep.

    The visit is written before the page is sent. No cookie; the pages' canonical links never carry ``ref``.
    """

    def __init__(self, directory: Path):
        self.directory = directory
        self.files = StaticFiles(directory=directory, html=True, check_dir=False)

    @staticmethod
    def _ref(scope: Scope) -> str | None:
        values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("ref", [])
        return values[0] if len(values) == 1 and REF.match(values[0]) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.directory.is_dir():  # not built yet: a plain 404, not StaticFiles' RuntimeError
            raise HTTPException(404, "Not Found")
        ref = self._ref(scope) if scope["method"] == "GET" else None
        if ref is None:
            await self.files(scope, receive, send)
            return
        tracker: Tracker = scope["app"].state.tracker
        ip, ua = _client(Request(scope))

        async def send_recording(message) -> None:
            if message["type"] == "http.response.start" and _is_page(scope["path"], message):
                path = scope["path"]
                await tracker.writer.record(ev.visit_hit(path, ref, _issue_of(path), ip, ua))
            await send(message)

        await self.files(scope, receive, send_recording)


# --- errors and the app ----------------------------------------------------------------------------


async def _http_error(request: Request, exc: HTTPException) -> Response:
    return _text(exc.status_code, str(exc.detail))


async def _busy(request: Request, exc: ev.DatabaseBusy) -> Response:
    return _text(503, "Service Unavailable: the database is busy, please retry. / 잠시 후 다시 시도해 주세요.")


async def _disconnect(request: Request, exc: ClientDisconnect) -> Response:
    return _text(400, "client disconnected")


async def _crash(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _text(500, "Internal Server Error")


def create_app(cfg, engine: Engine | None = None) -> Starlette:
    """The tracking app for a config; the database is the config's unless ``engine`` is given."""
    engine = engine or db.get_engine(cfg)
    key = webhook.public_key(cfg)
    site_dir = cfg.path(cfg.paths.build) / "site"
    signer = Signer.for_config(cfg)
    verifier = webhook.Verifier(key) if key else None

    @asynccontextmanager
    async def lifespan(app: Starlette):
        writer = ev.HitWriter(engine)
        writer.start()
        app.state.tracker = Tracker(cfg, engine, signer, writer, verifier)
        try:
            yield
        finally:
            await writer.close()  # every queued hit is in the database before the process exits
            s = writer.stats
            log.info("tracking stopped: %d hits written in %d batches, %d skipped", s.written, s.batches, s.skipped)

    routes = [
        Route("/o/{token}.gif", Pixel(), methods=["GET"]),
        Route("/c/{token}", click, methods=["GET"]),
        Route("/u/{token}", unsubscribe_page, methods=["GET"]),
        Route("/u/{token}", unsubscribe, methods=["POST"]),
        Route("/webhooks/sendgrid", sendgrid_webhook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Mount("/", app=Archive(site_dir)),
    ]
    handlers = {HTTPException: _http_error, ev.DatabaseBusy: _busy, ClientDisconnect: _disconnect, Exception: _crash}
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)


def app_from_env() -> Starlette:
    """App factory for ``uvicorn --factory`` and multi-worker serving: config from $NEWSLETTER_CONFIG."""
    from ..config import load_config

    return create_app(load_config())
