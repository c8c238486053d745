"""Bounces: classify returned messages and turn them into suppressions, holds and alerts."""

from .parse import Bounce, classify
from .policy import RecordOutcome, record, unsuppress
from .sources import RawMessage, iter_messages

__all__ = ["Bounce", "classify", "RecordOutcome", "record", "unsuppress", "RawMessage", "iter_messages", "scan",
           "ingest"]


def scan(paths) -> list[dict]:
    """``{"file", "recipient", "kind", "status", "diagnostic", "digest"}`` per recipient of each message."""
    out = []
    for message in iter_messages(paths):
        for b in classify(message.raw):
            out.append({"file": message.label, "recipient": b.recipient, "kind": b.kind, "status": b.status,
                        "diagnostic": b.diagnostic, "digest": message.digest})
    return out


def ingest(engine, cfg, paths, *, send_id=None, issue=None, progress=None) -> list[tuple[dict, RecordOutcome]]:
    """Classify and record every message under ``paths``; the same message twice counts once.

    ``progress``: called with the number of messages done so far (for a progress bar on a large mailbox)."""
    results = []
    for done, message in enumerate(iter_messages(paths), start=1):
        if progress:
            progress(done)
        for b in classify(message.raw):
            outcome = record(engine, cfg, address=b.recipient, kind=b.kind, status=b.status, diagnostic=b.diagnostic,
                             digest=message.digest, path=message.label, raw=message.raw, send_id=send_id,
                             issue=issue)
            results.append(({"file": message.label, "recipient": b.recipient, "kind": b.kind, "status": b.status,
                             "diagnostic": b.diagnostic}, outcome))
    return results
