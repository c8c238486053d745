"""SMTP (aiosmtplib): a small pool of reused connections, concurrency and rate from config,
STARTTLS / SSL / AUTH (password from SMTP_PASSWORD), refusals at RCPT/DATA recorded as bounces.

Exactly-once: a row is claimed (``sending``, committed) after the server accepted RCPT and the whole
body has been written, just before the terminating ``.`` — the one byte sequence that makes the server
take the message. The server's 250 then marks it ``sent``. A process killed between the two leaves the
row ``sending``; the next run reports it ``unknown`` and does not resend it (the server nearly always
got it: the only window where it did not is between our commit and the write of three bytes).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import ssl
from collections import deque

import aiosmtplib

from ...bounces import record
from ...config import secret
from ...errors import UserError
from ..ledger import Delivery
from ..message import render_bytes
from .base import Backend, Job

_ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_DOT = re.compile(rb"(?m)^\.")


def record_rejection(job: Job, address: str, code: int, message: str) -> None:
    """A synchronous refusal is a bounce: through ``newsletter.bounces.record`` (policy, suppression)."""
    status = (m.group(1) if (m := _ENHANCED.search(message)) else f"{code // 100}.0.0")
    diagnostic = f"smtp; {code} {message}"
    digest = hashlib.sha256(f"smtp-sync:{job.send_id}:{address}:{diagnostic}".encode()).hexdigest()
    record(job.engine, job.cfg, address=address, kind="permanent" if code >= 500 else "temporary", status=status,
           diagnostic=diagnostic, digest=digest, send_id=job.send_id, issue=job.prep.issue)


class _Rate:
    """At most ``per_second`` message starts per second across all connections."""

    def __init__(self, per_second: float):
        self.gap = 1.0 / per_second if per_second and per_second > 0 else 0.0
        self.next = 0.0

    async def wait(self) -> None:
        if not self.gap:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, self.next)
        self.next = start + self.gap
        if start > now:
            await asyncio.sleep(start - now)


class _Spike:
    """Refusals among the last N recipients; above the share, the send pauses itself."""

    def __init__(self, share: float, window: int):
        self.share, self.window = share, window
        self.last: deque[bool] = deque(maxlen=window)

    def add(self, refused: bool) -> None:
        self.last.append(refused)

    def reason(self, last_error: str) -> str | None:
        seen = len(self.last)
        if not self.share or seen < max(10, self.window // 5):
            return None
        refused = sum(self.last)
        if refused / seen <= self.share:
            return None
        return (f"{refused} of the last {seen} recipients were refused by the server "
                f"({refused / seen:.1%} > {self.share:.0%}); last refusal: {last_error}")


class _Retry(Exception):
    """The connection failed before the message was claimed: safe to try again on a new connection."""


class SmtpBackend(Backend):
    name = "smtp"
    batch_size = 200

    def __init__(self, cfg):
        super().__init__(cfg)
        self.s = cfg.send.smtp
        if self.s.security not in ("none", "starttls", "ssl"):
            raise UserError(f"send.smtp.security is {self.s.security!r}; expected none, starttls or ssl")
        self.concurrency = max(1, int(cfg.send.concurrency))
        self.loop: asyncio.AbstractEventLoop | None = None
        self.idle: list[aiosmtplib.SMTP] = []
        self.password = secret("SMTP_PASSWORD") if self.s.username else None

    def open(self, job: Job) -> None:
        self.loop = asyncio.new_event_loop()
        self.rate = _Rate(self.cfg.send.rate_per_second)
        self.spike = _Spike(self.s.rejection_spike, self.s.rejection_window)
        self.from_addr = self.cfg.sender.from_email

    # connections ---------------------------------------------------------------------------------
    async def _connect(self) -> aiosmtplib.SMTP:
        tls = ssl.create_default_context() if self.s.security != "none" else None
        client = aiosmtplib.SMTP(
            hostname=self.s.host, port=self.s.port, timeout=self.s.timeout,
            use_tls=self.s.security == "ssl", start_tls=self.s.security == "starttls", tls_context=tls,
        )
        try:
            await client.connect()
            if self.s.username:
                await client.login(self.s.username, self.password or "")
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise UserError(f"SMTP login as {self.s.username!r} refused: {exc.code} {exc.message}") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise _Retry(f"cannot connect to {self.s.host}:{self.s.port}: {exc}") from None
        return client

    async def _take(self) -> aiosmtplib.SMTP:
        while self.idle:
            client = self.idle.pop()
            if client.is_connected:
                return client
        return await self._connect()

    def _give(self, client: aiosmtplib.SMTP | None) -> None:
        if client is not None and client.is_connected:
            self.idle.append(client)

    # one message ---------------------------------------------------------------------------------
    async def _one(self, job: Job, client: aiosmtplib.SMTP, d: Delivery, body: bytes) -> None:
        try:
            await client.mail(self.from_addr)
            await client.rcpt(d.address)
        except aiosmtplib.SMTPRecipientRefused as exc:
            self._refused(job, d, exc.code, exc.message, claimed=False)
            await client.rset()
            return
        except aiosmtplib.SMTPSenderRefused as exc:
            raise UserError(f"the SMTP server refuses the sender {self.from_addr}: {exc.code} {exc.message}") from None
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
            raise _Retry(str(exc)) from None

        try:
            start = await client.execute_command(b"DATA")
            if start.code != 354:
                self._refused(job, d, start.code, start.message, claimed=False)
                await client.rset()
                return
            client.protocol.write(body)
            transport = client.protocol.transport
            while transport is not None and transport.get_write_buffer_size():   # the body is in the kernel:
                await asyncio.sleep(0.0005)                                      # a dead process still sends it
            if transport is None or transport.is_closing():
                raise aiosmtplib.SMTPServerDisconnected("connection lost while sending the body")
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
            raise _Retry(str(exc)) from None

        job.ledger.sending([d.id])            # committed: from here on the outcome may be ambiguous
        try:
            done = await client.execute_command(b".")
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
            job.ledger.unknown([d.id], f"connection lost after the message was handed over: {exc}")
            client.close()
            return
        if done.code == 250:
            job.ledger.sent_each([(d.id, done.message[:200])])
            self.spike.add(False)
        else:
            self._refused(job, d, done.code, done.message, claimed=True)

    def _refused(self, job: Job, d: Delivery, code: int, message: str, *, claimed: bool) -> None:
        error = f"{code} {message}"
        record_rejection(job, d.address, code, message)
        if code >= 500:
            job.ledger.failed([d.id], error, claimed=claimed)
        elif claimed:
            job.ledger.release([d.id], error)   # 4xx: try again on a later run
        self.spike.add(True)
        if job.paused is None and (why := self.spike.reason(f"{d.address}: {error}")):
            job.paused = why

    @staticmethod
    def _wire(message: bytes) -> bytes:
        body = _DOT.sub(b"..", message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        return body if body.endswith(b"\r\n") else body + b"\r\n"

    async def _worker(self, job: Job, queue: asyncio.Queue) -> None:
        client = None
        try:
            while not queue.empty() and not job.stop.is_set() and job.paused is None:
                d = queue.get_nowait()
                body = self._wire(render_bytes(self.cfg, job.prep, job.send_id, job.signer, d))
                await self.rate.wait()
                for attempt in range(4):
                    try:
                        client = client or await self._take()
                        await self._one(job, client, d, body)
                        break
                    except _Retry as exc:
                        if client is not None:
                            client.close()
                        client = None
                        if attempt == 3 or job.stop.is_set():
                            job.notes.append(f"SMTP connection problem, {d.address} left pending: {exc}")
                            job.stop.set()   # the server is gone: stop, keep the rest pending
                            break
                        await asyncio.sleep(min(8.0, 0.2 * 2 ** attempt) * (0.5 + random.random()))
        finally:
            self._give(client)

    async def _batch(self, job: Job, rows: list[Delivery]) -> None:
        queue: asyncio.Queue = asyncio.Queue()
        for d in rows:
            queue.put_nowait(d)
        workers = [asyncio.ensure_future(self._worker(job, queue)) for _ in range(min(self.concurrency, len(rows)))]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise

    def send_batch(self, job: Job, rows: list[Delivery]) -> int:
        self.loop.run_until_complete(self._batch(job, rows))
        return len(rows)

    def close(self) -> None:
        if self.loop is None:
            return

        async def quit_all():
            for client in self.idle:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()

        self.loop.run_until_complete(quit_all())
        self.idle.clear()
        self.loop.close()
        self.loop = None

