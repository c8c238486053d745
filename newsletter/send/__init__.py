"""Sending: the ledger, per-recipient messages, the outbox / SMTP / SendGrid backends (docs/sending.md);
and the monthly schedule with its database lock (schedule.py, lock.py; docs/schedule.md)."""

__all__ = ["Plan", "SendResult", "execute", "plan_send", "send_issue"]


def __getattr__(name: str):
    """Import the runner on first use: `newsletter schedule` and `--help` need not load the renderer."""
    if name in __all__:
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
