"""Signed, compact URL tokens: no raw e-mail address ever appears in a URL, and nothing unsigned redirects.

A *recipient token* names one delivery (ledger row) for one purpose:

    o.<b64(delivery_id)>.<sig>   open pixel      -> /o/<token>.gif
    u.<b64(delivery_id)>.<sig>   unsubscribe     -> /u/<token>
    r.<b64(delivery_id)>.<sig>   click recipient -> first half of a click token

A *link token* signs one destination URL (computed once per send, not per recipient):

    <b64(url)>.<sig>

A click URL is ``/c/<recipient token>~<link token>``: the server redirects only to the URL the link
token signed, so an altered token gets 404, never an open redirect.

The key is derived from ``NEWSLETTER_SECRET`` (environment), one sub-key per purpose.
Tokens carry no expiry: a link in a year-old issue must still unsubscribe.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from functools import lru_cache

from ..errors import UserError

SIG_BYTES = 10  # 80-bit truncated HMAC-SHA256: ample against online forgery, short in URLs
PURPOSES = ("o", "u", "r")


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> str:
    """URL-safe base64 without padding (binascii directly: this runs three times per recipient)."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def secret_from_env() -> bytes:
    value = os.environ.get("NEWSLETTER_SECRET")
    if not value:
        raise UserError(
            "environment variable NEWSLETTER_SECRET is not set (it signs tracking and unsubscribe links); "
            "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return value.encode("utf-8")


def _id_body(delivery_id: int) -> str:
    return _b64(delivery_id.to_bytes(8, "big").lstrip(b"\0") or b"\0")


@lru_cache(maxsize=64)
def _purpose_pads(secret: bytes, purpose: str):
    """HMAC-SHA256 (RFC 2104) keyed per (secret, purpose), as its two pre-hashed pads: each signature
    then costs two hash copies and no key setup — tokens are made three times per recipient."""
    key = hmac.new(secret, b"dangol-token-v1:" + purpose.encode(), hashlib.sha256).digest().ljust(64, b"\0")
    return hashlib.sha256(bytes(b ^ 0x36 for b in key)), hashlib.sha256(bytes(b ^ 0x5C for b in key))


def _mac(secret: bytes, purpose: str, message: bytes) -> bytes:
    inner, outer = _purpose_pads(secret, purpose)
    inner, outer = inner.copy(), outer.copy()
    inner.update(message)
    outer.update(inner.digest())
    return outer.digest()[:SIG_BYTES]


@dataclass(frozen=True)
class Signer:
    """Signs and verifies tokens with one secret; ``Signer.from_env()`` reads NEWSLETTER_SECRET."""

    secret: bytes

    @classmethod
    def from_env(cls) -> "Signer":
        return cls(secret_from_env())

    @classmethod
    def for_config(cls, cfg, *, allow_local: bool = True) -> "Signer":
        """NEWSLETTER_SECRET if set; else, for local runs (outbox, preview), a random key kept in
        ``state/secret.key`` (created once, mode 0600, never committed: state/ is git-ignored)."""
        if os.environ.get("NEWSLETTER_SECRET") or not allow_local:
            return cls.from_env()
        path = cfg.path(cfg.paths.state) / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32))
        return cls(path.read_text().strip().encode("utf-8"))

    def _sig(self, purpose: str, body: str) -> str:
        return _b64(_mac(self.secret, purpose, body.encode("utf-8")))

    def _valid(self, purpose: str, body: str, sig: str) -> bool:
        """Constant-time check; anything non-ASCII (never produced by us) is simply invalid."""
        if not (body.isascii() and sig.isascii()):
            return False
        return hmac.compare_digest(sig, self._sig(purpose, body))

    # recipient tokens ---------------------------------------------------------------------------
    def recipient(self, purpose: str, delivery_id: int) -> str:
        if purpose not in PURPOSES:
            raise ValueError(f"unknown token purpose {purpose!r}")
        body = _id_body(delivery_id)
        return f"{purpose}.{body}.{self._sig(purpose, body)}"

    def recipient_tokens(self, delivery_id: int) -> tuple[str, str, str]:
        """The open, unsubscribe and click-recipient tokens of one delivery (the send's hot path)."""
        body = _id_body(delivery_id)
        raw, secret = body.encode("ascii"), self.secret
        o, u, r = (f"{p}.{body}.{_b64(_mac(secret, p, raw))}" for p in PURPOSES)
        return o, u, r

    def read_recipient(self, purpose: str, token: str) -> int | None:
        """The delivery id a valid token names, or None for anything forged, altered or malformed."""
        try:
            p, body, sig = token.split(".")
        except ValueError:
            return None
        if p != purpose or len(body) > 12 or not self._valid(purpose, body, sig):
            return None
        try:
            return int.from_bytes(_unb64(body), "big")
        except (binascii.Error, ValueError):
            return None

    # link tokens --------------------------------------------------------------------------------
    def link(self, url: str) -> str:
        body = _b64(url.encode("utf-8"))
        return f"{body}.{self._sig('l', body)}"

    def read_link(self, token: str) -> str | None:
        try:
            body, sig = token.split(".")
        except ValueError:
            return None
        if not self._valid("l", body, sig):
            return None
        try:
            return _unb64(body).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None

    # click tokens -------------------------------------------------------------------------------
    def read_click(self, token: str) -> tuple[int, str] | None:
        """(delivery id, destination URL) of a click token ``<recipient>~<link>``, or None."""
        if token.count("~") != 1:
            return None
        rtok, ltok = token.split("~")
        delivery_id = self.read_recipient("r", rtok)
        url = self.read_link(ltok)
        if delivery_id is None or url is None:
            return None
        return delivery_id, url
