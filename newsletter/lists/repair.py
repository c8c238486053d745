"""Domain-typo repair, only where exactly one well-known provider is meant.

A domain is compared with a table of common mailbox providers (Korean ones first). It is repaired when it is
not itself in the table and exactly one provider is one edit away (Damerau-Levenshtein: one insertion,
deletion, substitution or swap of neighbours), and that edit is a *safe* one: anywhere in a label of five or
more letters or in the top-level part, but only a swap inside a short label (``ntae.com`` is nate.com,
while ``name.com`` or ``mate.com`` are real domains of their own and are left alone).

It is refused as ambiguous (never repaired, never mailed) when two providers are one edit away
(``nater.com``: naver.com or nate.com?) or when it looks like a provider with a truncated top-level domain
(``kakao.co``: kakao.com or kakao.co.kr?).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

# Well-known mailbox domains. A domain listed here is never "repaired" into another one.
KNOWN_DOMAINS: tuple[str, ...] = (
    # Korean providers
    "naver.com", "hanmail.net", "daum.net", "kakao.com", "nate.com", "hanmir.com", "empal.com",
    "korea.com", "paran.com", "chol.com", "dreamwiz.com", "lycos.co.kr", "freechal.com", "hitel.net",
    "netian.com", "yahoo.co.kr", "hotmail.co.kr", "naver.co.kr",
    # Global providers
    "gmail.com", "googlemail.com", "hotmail.com", "outlook.com", "live.com", "msn.com", "yahoo.com",
    "ymail.com", "icloud.com", "me.com", "mac.com", "aol.com", "proton.me", "protonmail.com", "gmx.com",
    "mail.com", "email.com", "zoho.com", "yandex.com", "qq.com", "163.com", "126.com",
)
_KNOWN = frozenset(KNOWN_DOMAINS)

SHORT_LABEL = 4  # labels this short only accept a swap of neighbours as a typo


@dataclass(frozen=True, slots=True)
class Repair:
    """The decision for one domain: ``to`` is set for a safe repair, ``candidates`` for an ambiguous one."""

    domain: str
    to: str | None = None
    candidates: tuple[str, ...] = ()

    @property
    def ambiguous(self) -> bool:
        return bool(self.candidates)


def _edit(a: str, b: str) -> tuple[str, int] | None:
    """The single edit turning ``a`` into ``b`` as (kind, position in b), or None if it takes more or none."""
    if a == b:
        return None
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return None
    i = 0
    while i < min(la, lb) and a[i] == b[i]:
        i += 1
    if la == lb:
        if a[i + 1 :] == b[i + 1 :]:
            return ("substitute", i)
        if i + 1 < la and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]:
            return ("swap", i)
        return None
    if la > lb:  # a has one extra character
        return ("delete", i) if a[i + 1 :] == b[i:] else None
    return ("insert", i) if a[i:] == b[i + 1 :] else None


def _safe(edit: tuple[str, int], target: str) -> bool:
    kind, pos = edit
    label_end = target.find(".")
    if pos >= label_end:  # in the top-level part
        return True
    return label_end > SHORT_LABEL or kind == "swap"


@lru_cache(maxsize=100_000)
def decide(domain: str) -> Repair | None:
    """The repair decision for one (lower-case) domain; None when it is fine as written."""
    if domain in _KNOWN or "" in domain.split("."):
        return None  # a known domain, or a broken one (a..b) that syntax checking reports
    near = [(k, e) for k in KNOWN_DOMAINS if (e := _edit(domain, k)) is not None]
    truncated = [k for k in KNOWN_DOMAINS if k.startswith(domain)]
    if truncated:
        # A provider label with its top-level domain cut short: .co -> .com or .co.kr, .ne -> .net or .ne.kr
        label = domain.partition(".")[0]
        wider = {k for k in KNOWN_DOMAINS if k.partition(".")[0] == label} | set(truncated)
        cut = domain.rpartition(".")[2]
        wider |= {f"{label}.{cut}.kr"} if len(cut) == 2 else set()
        return Repair(domain, candidates=tuple(sorted(wider)))
    if len(near) > 1:
        return Repair(domain, candidates=tuple(sorted(k for k, _ in near)))
    if len(near) == 1 and _safe(near[0][1], near[0][0]):
        return Repair(domain, to=near[0][0])
    return None
