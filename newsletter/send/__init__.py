"""Sending: the ledger, per-recipient messages, the outbox / SMTP / SendGrid backends (docs/sending.md);
and the monthly schedule with its database lock (schedule.py, lock.py; docs/schedule.md)."""

from .runner import Plan, SendResult, execute, plan_send, send_issue

__all__ = ["Plan", "SendResult", "execute", "plan_send", "send_issue"]
