"""Filling ``%%field%%`` placeholders per recipient, fast.

A chain of ``str.replace`` scans and copies the whole ~40 KB part once per field (a Korean part is a
2-byte-per-character string, slower still): a few thousand recipients/s on the bench machine.
Splitting the part once at its placeholders and joining per recipient copies it once: about 25-40x
faster (bench/bench_build.py prints both).
"""

from __future__ import annotations

import re

PLACEHOLDER = re.compile(r"%%([A-Za-z_][A-Za-z0-9_]{0,39})%%")


class MergeTemplate:
    """A built part split once at its placeholders; ``fill(values)`` is one ``str.join``.

    A field missing from ``values`` stays as written (``%%field%%``), as ``str.replace`` would leave it.
    """

    __slots__ = ("_parts", "fields")

    def __init__(self, text: str):
        self._parts = PLACEHOLDER.split(text)          # text, field, text, field, ..., text
        self.fields = frozenset(self._parts[1::2])

    def fill(self, values: dict[str, str]) -> str:
        parts = self._parts[:]
        for i in range(1, len(parts), 2):
            name = parts[i]
            parts[i] = values[name] if name in values else f"%%{name}%%"
        return "".join(parts)
