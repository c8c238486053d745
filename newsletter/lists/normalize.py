"""Canonical form and syntax check of one address, fast enough for a million rows.

The canonical form is what dedupe and suppression compare: NFKC (full-width ＠ ． ａ), the last ``<...>``
of a ``Name <addr>`` wrapper, no ``mailto:``, lower case throughout (Korean and global providers treat the
local part case-insensitively), IDN domains kept in Unicode, plus tags and dots kept.

Validation runs cheap checks first, each with a named reason a user can act on (``empty``, ``placeholder``,
``space_inside``, ``missing_at``, ``two_at``, ``trailing_dot``, ``no_tld``), then email-validator once per
domain (cached) plus a regex for plain ASCII local parts; anything unusual goes through email-validator whole.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import email_validator

from .repair import decide

# Values that CRM and Excel exports use for "no address"; compared case-insensitively after stripping.
PLACEHOLDERS = frozenset(
    p.strip().casefold() for p in ("N/A", "n/a", "#N/A", "-", "--", "없음", "na", "none", "null", "nil", "미상", "x", "?")
)

# Reasons in the order they are tried; the first that applies is reported.
INVALID_REASONS = (
    "empty", "placeholder", "space_inside", "missing_at", "two_at", "trailing_dot", "no_tld",
    "ambiguous_typo", "syntax",
)

_PHRASES = {
    "empty": "is empty", "placeholder": "is a placeholder, not an address", "space_inside": "has a space inside",
    "missing_at": "has no @", "two_at": "has more than one @", "trailing_dot": "ends with a dot",
    "no_tld": "has no top-level domain", "ambiguous_typo": "has an ambiguous domain typo", "syntax": "is not valid",
    "unreadable": "could not be read", "columns": "is on a row with the wrong number of columns",
    "no_mx": "has a domain that receives no mail",
}


def describe(reason: str, detail: str = "") -> str:
    """A short phrase for an invalid_reason, for attention.csv and the terminal."""
    phrase = _PHRASES.get(reason, reason.replace("_", " "))
    return f"{phrase} ({detail})" if detail else phrase


_WS = re.compile(r"\s")
_ATEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ASCII_LOCAL = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*\Z")
_TLD = re.compile(r"(?:[a-z]{2,63}|[\uac00-\ud7a3]+|xn--[a-z0-9-]+)\Z")


def canonicalize(raw: str | None) -> str:
    """The canonical form of a raw address cell (may be empty or still invalid)."""
    if not raw:
        return ""
    value = raw if raw.isascii() else unicodedata.normalize("NFKC", raw)
    value = value.strip()
    if "<" in value:
        start = value.rfind("<")
        end = value.find(">", start)
        if end > start:
            value = value[start + 1 : end]
    value = value.strip()
    if value[:7].lower() == "mailto:":
        value = value[7:].strip()
    return value.lower()


def is_placeholder(raw: str | None) -> bool:
    if not raw:
        return False
    value = raw if raw.isascii() else unicodedata.normalize("NFKC", raw)
    return value.strip().casefold() in PLACEHOLDERS


def precheck(address: str, raw: str | None = None) -> str | None:
    """The first cheap reason the canonical ``address`` is unusable, or None if it may be valid."""
    if not address:
        return "placeholder" if is_placeholder(raw) else "empty"
    if address in PLACEHOLDERS or is_placeholder(raw):
        return "placeholder"
    if _WS.search(address):
        return "space_inside"
    ats = address.count("@")
    if ats == 0:
        return "missing_at"
    if ats > 1:
        return "two_at"
    if address.endswith("."):
        return "trailing_dot"
    domain = address.rpartition("@")[2]
    if "." not in domain:
        return "no_tld"
    return None


@lru_cache(maxsize=200_000)
def _domain_error(domain: str) -> str | None:
    """email-validator's verdict on a domain, once per domain: most lists have a few thousand."""
    labels = domain.split(".")
    if any(not label for label in labels):
        return "empty label in domain"
    if not _TLD.match(labels[-1]):
        return "top-level domain is not alphabetic"
    try:
        email_validator.validate_email(f"a@{domain}", check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        return str(exc)
    return None


def syntax_error(address: str) -> str | None:
    """Why a prechecked address is not deliverable by syntax (RFC 5322 dot-atom, IDNA), or None."""
    local, _, domain = address.rpartition("@")
    err = _domain_error(domain)
    if err:
        return err
    if len(local) <= 64 and len(address) <= 254 and _ASCII_LOCAL.match(local):
        return None
    try:
        email_validator.validate_email(address, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        return str(exc)
    return None


_FAST = re.compile(rf"({_ATEXT}(?:\.{_ATEXT})*)@([a-z0-9-]+(?:\.[a-z0-9-]+)+)\Z")


@lru_cache(maxsize=200_000)
def _domain_verdict(domain: str) -> tuple[str | None, str | None, str]:
    """(repaired domain or None, invalid_reason or None, detail) — decided once per distinct domain."""
    decision = decide(domain)
    if decision is not None and decision.ambiguous:
        return None, "ambiguous_typo", f"{domain} could be {' or '.join(decision.candidates)}"
    to = decision.to if decision is not None else None
    err = _domain_error(to or domain)
    if err:
        return None, "syntax", err
    return to, None, ""


def resolve(raw: str | None) -> tuple[str, str | None, str | None, str | None, str]:
    """One address cell through canonicalize ▸ check ▸ repair ▸ validate.

    Returns ``(normalized, canonical, repaired_from, invalid_reason, detail)``: ``normalized`` is the canonical
    form before repair (kept for invalid values too), ``canonical`` is None when the address is unusable.
    Plain ASCII addresses take a fast path (one regex, one cached look-up per domain); the rest go step by step.
    """
    if raw and raw.isascii():
        value = raw.strip().lower()
        m = _FAST.match(value)
        if m and len(value) <= 254 and len(m.group(1)) <= 64:
            to, reason, detail = _domain_verdict(m.group(2))
            if reason:
                return value, None, None, reason, detail
            if to:
                return value, f"{m.group(1)}@{to}", value, None, ""
            return value, value, None, None, ""
    normalized = canonicalize(raw)
    reason = precheck(normalized, raw)
    if reason:
        return normalized, None, None, reason, ""
    local, _, domain = normalized.rpartition("@")
    to, reason, detail = _domain_verdict(domain)
    if reason:
        return normalized, None, None, reason, detail
    address = f"{local}@{to}" if to else normalized
    err = syntax_error(address)
    if err:
        return normalized, None, None, "syntax", err
    return normalized, address, (normalized if to else None), None, ""
