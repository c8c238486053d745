"""Sending: the ledger, per-recipient messages, and the outbox / SMTP / SendGrid backends (docs/sending.md)."""

from .runner import Plan, SendResult, execute, plan_send, send_issue

__all__ = ["Plan", "SendResult", "execute", "plan_send", "send_issue"]
