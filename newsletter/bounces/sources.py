"""Where returned messages come from: .eml files, folders of them, mbox files and Maildirs."""

from __future__ import annotations

import hashlib
import mailbox
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import UserError


@dataclass(frozen=True, slots=True)
class RawMessage:
    label: str  # file path, or "mbox#3", or "Maildir/cur/<key>"
    raw: bytes

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


def _is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


def _is_mbox(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(5) == b"From "


def iter_messages(paths: Iterable[str | Path]) -> Iterator[RawMessage]:
    """Each message under the given paths, in a stable order."""
    for p in map(Path, paths):
        if not p.exists():
            raise UserError("no such file or folder", where=str(p))
        if p.is_dir() and _is_maildir(p):
            box = mailbox.Maildir(p, factory=None, create=False)
            for key in sorted(box.keys()):
                yield RawMessage(f"{p}/{key}", box.get_bytes(key))
        elif p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")
                           and f.name != "truth.json" and f.suffix.lower() not in (".json", ".md"))
            yield from iter_messages(files)
        elif _is_mbox(p):
            box = mailbox.mbox(p, factory=None, create=False)
            for i, key in enumerate(box.keys(), start=1):
                yield RawMessage(f"{p}#{i}", box.get_bytes(key))
        else:
            yield RawMessage(str(p), p.read_bytes())
