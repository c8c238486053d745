"""A real SMTP server on 127.0.0.1 (aiosmtpd) that records every message it accepts.

It can refuse chosen recipients at RCPT, slow each DATA down, require AUTH, offer STARTTLS.
"""

from __future__ import annotations

import asyncio
import email
import socket
import ssl
import subprocess
import threading
from email import policy
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.refuse: dict[str, str] = {}   # address -> "550 5.1.1 ..." answered at RCPT
        self.messages: list[tuple[list[str], bytes]] = []
        self.logins: list[str] = []
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), envelope.content))
            n = len(self.messages)
        return f"250 2.0.0 Ok: queued as Q{n:06d}"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cret":
            self.logins.append(auth_data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    # what a test asserts --------------------------------------------------------------------------
    @property
    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def recipients(self) -> list[str]:
        with self.lock:
            return [to for tos, _ in self.messages for to in tos]

    def parsed(self) -> list[email.message.EmailMessage]:
        with self.lock:
            return [email.message_from_bytes(raw, policy=policy.default) for _, raw in self.messages]


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


class Server:
    def __init__(self, recorder: Recorder, *, auth: bool = False, tls: tuple[Path, Path] | None = None,
                 implicit_tls: bool = False):
        self.recorder = recorder
        self.port = free_port()
        kwargs = {}
        if auth:
            kwargs.update(authenticator=recorder.authenticate, auth_required=True,
                          auth_require_tls=bool(tls) and not implicit_tls)  # aiosmtpd: implicit TLS is not "TLS" to it
        extra = {}
        if tls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            if implicit_tls:
                extra["ssl_context"] = ctx
            else:
                kwargs.update(tls_context=ctx, require_starttls=True)
        self.controller = Controller(recorder, hostname="127.0.0.1", port=self.port, **kwargs, **extra,
                                     data_size_limit=10_000_000)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


if __name__ == "__main__":  # a standalone server for bench/bench_send.py: python tests/_smtp_server.py PORT
    import json
    import signal
    import sys
    import time

    class Counter:
        def __init__(self):
            self.n = 0

        async def handle_DATA(self, server, session, envelope):
            self.n += 1
            return "250 OK"

    counter = Counter()
    ctl = Controller(counter, hostname="127.0.0.1", port=int(sys.argv[1]), data_size_limit=10_000_000)
    ctl.start()
    print("ready", flush=True)

    def stop(*_):
        print(json.dumps({"messages": counter.n}), flush=True)
        ctl.stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    while True:
        time.sleep(3600)
