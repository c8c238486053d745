"""One interface for every way out (django-anymail style): the runner hands a backend batches of
ledger rows of one variant; the backend says, through the ledger, what became of each row.

A backend must call ``job.ledger.sending(ids)`` at the last moment before the provider can accept
the message, and then exactly one of ``sent`` / ``failed`` / ``unknown`` / ``release`` for those ids.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ...config import Config
from ...track.tokens import Signer
from ..ledger import Delivery, Ledger
from ..message import Prepared


@dataclass
class Job:
    """What a backend needs to know about the send in progress."""

    cfg: Config
    send_id: int
    kind: str                      # real | test | resend
    prep: Prepared
    signer: Signer
    ledger: Ledger
    engine: object
    scheduled_for: object = None   # aware datetime, or None for now
    stop: threading.Event = field(default_factory=threading.Event)   # Ctrl-C: finish in flight, then stop
    paused: str | None = None      # set by a backend that paused the send, with the reason
    notes: list[str] = field(default_factory=list)


class Backend:
    name = "base"
    batch_size = 500

    def __init__(self, cfg: Config):
        self.cfg = cfg

    def open(self, job: Job) -> None:
        """Called once before the first batch (connections, a SendGrid batch id, ...)."""

    def send_batch(self, job: Job, rows: list[Delivery]) -> int:
        """Send one batch of rows of one variant; return how many were sent."""
        raise NotImplementedError

    def flush(self, job: Job) -> None:
        """Wait for whatever is still in flight and record its outcome (backends that pipeline)."""

    def went_out(self, job: Job, d: Delivery) -> bool | None:
        """For rows a dead process left ``sending``: True/False if this backend can tell, None if not."""
        return None

    def close(self) -> None:
        """Called once at the end, also after an error."""


def get_backend(cfg: Config, name: str | None) -> Backend:
    name = name or cfg.send.backend
    if name == "outbox":
        from .outbox import OutboxBackend

        return OutboxBackend(cfg)
    if name == "smtp":
        from .smtp import SmtpBackend

        return SmtpBackend(cfg)
    if name == "sendgrid":
        from .sendgrid import SendGridBackend

        return SendGridBackend(cfg)
    from ...errors import UserError

    raise UserError(f"unknown backend {name!r} (outbox, smtp or sendgrid)", where="send.backend")
