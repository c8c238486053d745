"""A local stand-in for the SendGrid v3 API: real HTTP on 127.0.0.1, every Mail Send body validated
against the official JSON Schema, scripted answers (202, 429 with a reset header, 500, 400, hang),
and a count of the recipients it accepted.

Run alone (for bench/bench_send.py): ``python tests/_sendgrid_server.py PORT``.
"""

from __future__ import annotations

import collections
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
from conftest import SPECS

SCHEMA_PATH = SPECS / "sendgrid-mail-send.schema.json"
API_KEY = "SG.test-key"


def validator(schema_path: Path = SCHEMA_PATH):
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


class State:
    def __init__(self, schema_path: Path = SCHEMA_PATH, validate_every: int = 1):
        self.validator = validator(schema_path) if validate_every else None
        self.validate_every = validate_every   # the benchmark samples (validation costs ~0.3 s per 1,000)
        self.validate_after_reply = False      # the benchmark validates after answering, tests before
        self.lock = threading.Lock()
        self.script: collections.deque = collections.deque()  # answers for the next mail/send calls
        self.delay = 0.0            # seconds between accepting a body and answering 202
        self.requests = 0           # POST /v3/mail/send calls
        self.accepted: collections.Counter = collections.Counter()   # recipient address -> times accepted
        self.bodies: list[dict] = []
        self.invalid: list[str] = []
        self.batches: list[str] = []
        self.cancelled: list[str] = []   # batch ids cancelled through /v3/user/scheduled_sends
        self.scheduled_sends: list[dict] = []   # every accepted scheduled_sends body
        self.keep_bodies = True

    def answer(self) -> tuple:
        with self.lock:
            return self.script.popleft() if self.script else ("202",)

    @property
    def total(self) -> int:
        with self.lock:
            return sum(self.accepted.values())


class Handler(BaseHTTPRequestHandler):
    state: State

    def log_message(self, *args):
        pass

    def _reply(self, code: int, body: dict | None = None, headers: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        st = self.state
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Authorization") != f"Bearer {API_KEY}":
            return self._reply(401, {"errors": [{"message": "The provided authorization grant is invalid"}]})
        if self.path == "/v3/mail/batch":
            batch_id = uuid.uuid4().hex
            with st.lock:
                st.batches.append(batch_id)
            return self._reply(201, {"batch_id": batch_id})
        if self.path == "/v3/user/scheduled_sends":
            return self._scheduled_send(raw)
        if self.path != "/v3/mail/send":
            return self._reply(404, {"errors": [{"message": "not found"}]})
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            return self._reply(415, {"errors": [{"message": "Content-Type should be application/json"}]})
        with st.lock:
            st.requests += 1
            nth = st.requests
        body = json.loads(raw)
        sample = st.validator is not None and (nth - 1) % st.validate_every == 0
        if sample and not st.validate_after_reply:
            errors = sorted(st.validator.iter_errors(body), key=lambda e: list(e.path))
            if errors:
                with st.lock:
                    st.invalid.append(errors[0].message)
                return self._reply(400, {"errors": [{"field": ".".join(map(str, e.path)), "message": e.message}
                                                    for e in errors[:5]]})
        kind, *args = st.answer()
        if kind == "429":
            reset = time.time() + (args[0] if args else 1)
            return self._reply(429, {"errors": [{"message": "too many requests"}]},
                               {"X-RateLimit-Reset": f"{reset:.3f}", "X-RateLimit-Remaining": 0})
        if kind == "500":
            return self._reply(500, {"errors": [{"message": "internal error"}]})
        if kind == "400":
            return self._reply(400, {"errors": [{"field": "from.email", "message": args[0] if args else "bad request"}]})
        # 202 or hang: SendGrid has the body now
        with st.lock:
            for p in body["personalizations"]:
                for to in p["to"]:
                    st.accepted[to["email"]] += 1
            if st.keep_bodies:
                st.bodies.append(body)
        if kind == "hang":
            time.sleep(args[0] if args else 30)
            return
        if st.delay:
            time.sleep(st.delay)
        self._reply(202, None, {"X-Message-Id": uuid.uuid4().hex[:22]})
        if sample and st.validate_after_reply:   # benchmark: check the schema without holding the sender up
            if next(st.validator.iter_errors(body), None) is not None:
                with st.lock:
                    st.invalid.append("invalid body")


    def _scheduled_send(self, raw: bytes):
        """POST /v3/user/scheduled_sends as SendGrid documents it: ``{"batch_id", "status": "cancel" | "pause"}``
        for a batch id that /v3/mail/batch issued; 201 echoes the body."""
        st = self.state
        try:
            body = json.loads(raw)
        except ValueError:
            return self._reply(400, {"errors": [{"message": "invalid JSON"}]})
        if not isinstance(body, dict) or set(body) != {"batch_id", "status"} or body["status"] not in ("cancel", "pause"):
            return self._reply(400, {"errors": [{"field": "status", "message": "expected {batch_id, status: cancel|pause}"}]})
        with st.lock:
            if body["batch_id"] not in st.batches:
                return self._reply(400, {"errors": [{"field": "batch_id", "message": "invalid batch id"}]})
            st.scheduled_sends.append(body)
            if body["status"] == "cancel":
                st.cancelled.append(body["batch_id"])
        return self._reply(201, body)


class Server:
    """``with Server() as sg: ...`` — ``sg.url`` for SENDGRID_API_HOST, ``sg.state`` for assertions."""

    def __init__(self, port: int = 0, state: State | None = None):
        self.state = state or State()
        handler = type("H", (Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":  # a standalone server for the benchmark; prints its count on SIGTERM/Ctrl-C
    import signal

    every = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    srv = Server(int(sys.argv[1]), State(validate_every=every))
    srv.state.keep_bodies = False
    srv.state.validate_after_reply = True

    def stop(*_):
        print(json.dumps({"requests": srv.state.requests, "recipients": srv.state.total,
                          "distinct": len(srv.state.accepted), "invalid": len(srv.state.invalid)}), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print(srv.url, flush=True)
    try:
        srv.httpd.serve_forever()
    except KeyboardInterrupt:
        stop()
