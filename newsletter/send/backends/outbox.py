"""The embedded default: one ``.eml`` file per recipient under ``outbox/<issue>/`` — no account needed.

Files are written atomically (temporary name, then rename) under a name derived from the delivery id,
so after a crash the folder says exactly which rows went out: the outbox has no `unknown` window.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..ledger import Delivery
from ..message import render_bytes
from .base import Backend, Job


class OutboxBackend(Backend):
    name = "outbox"
    batch_size = 500

    def folder(self, job: Job) -> Path:
        base = self.cfg.path(self.cfg.paths.outbox) / job.prep.issue
        return base / job.kind if job.kind != "real" else base

    def path(self, job: Job, d: Delivery) -> Path:
        safe = "".join(c if c.isalnum() or c in "@._-+" else "_" for c in d.address)
        return self.folder(job) / f"{job.send_id:04d}-{d.id:07d}-{safe}.eml"

    def open(self, job: Job) -> None:
        self.folder(job).mkdir(parents=True, exist_ok=True)

    def send_batch(self, job: Job, rows: list[Delivery]) -> int:
        ids = [d.id for d in rows]
        job.ledger.sending(ids)
        for d in rows:
            target = self.path(job, d)
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(render_bytes(self.cfg, job.prep, job.send_id, job.signer, d))
            os.replace(tmp, target)
        job.ledger.sent(ids, provider_id=None)
        return len(ids)

    def went_out(self, job: Job, d: Delivery) -> bool:
        return self.path(job, d).exists()
