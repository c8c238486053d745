"""From the built issue to one message per recipient: prepare once per send, fill per recipient.

``prepare`` reads the build through ``newsletter.render.load_built`` (the render → send contract)
and rewrites every tracked link once into ``<tracking>/c/%%r%%~<link-token>``; filling a recipient is
then one ``MergeTemplate.fill`` (a join) per part, and ``mime`` wraps the result in a standards-clean message.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
import secrets
from dataclasses import dataclass, field
from email.header import Header

from email.utils import formataddr, format_datetime

from ..config import Config
from ..errors import UserError
from ..render import MergeTemplate, load_built
from ..track.tokens import Signer
from .ledger import Delivery

AD_PREFIX = "(광고)"
TEST_PREFIX = "[TEST] "
DEFAULT_NAME = "고객"

_HREF = re.compile(r"""(href\s*=\s*)(["'])(https?://[^"']+)\2""", re.IGNORECASE)
_TEXT_URL = re.compile(r"https?://[^\s<>\"'\]\)]+")
_TRAILING = ".,;:!?"


@dataclass
class Variant:
    name: str
    tiers: tuple[str, ...]
    html: str   # links rewritten, %%placeholders%% kept
    text: str
    html_merge: MergeTemplate = field(init=False, repr=False)
    text_merge: MergeTemplate = field(init=False, repr=False)

    def __post_init__(self):
        self.html_merge = MergeTemplate(self.html)
        self.text_merge = MergeTemplate(self.text)


@dataclass
class Prepared:
    """One send's compiled bodies: everything that does not depend on the recipient."""

    issue: str
    subject: str
    ad: bool
    variants: dict[str, Variant]
    tier_variant: dict[str, str]
    links: dict[str, str] = field(default_factory=dict)  # original URL -> link token
    composers: dict = field(default_factory=dict, repr=False)  # send id -> Composer


def _tracked(url: str, tracking: str) -> bool:
    return "%%" not in url and not url.startswith(tracking + "/")


def prepare(cfg: Config, issue_id: str, signer: Signer, *, test: bool = False) -> Prepared:
    """Read the build and rewrite its links once for this send (link tokens are per URL, not per recipient)."""
    built = load_built(cfg, issue_id)
    tracking = cfg.tracking.base_url.rstrip("/")
    links: dict[str, str] = {}

    def click(url: str) -> str:
        token = links.get(url)
        if token is None:
            token = links[url] = signer.link(url)
        return f"{tracking}/c/%%r%%~{token}"

    def rewrite_href(m: re.Match) -> str:
        url = html.unescape(m.group(3))
        return m.group(0) if not _tracked(url, tracking) else f"{m.group(1)}{m.group(2)}{click(url)}{m.group(2)}"

    def rewrite_text(m: re.Match) -> str:
        url = m.group(0)
        tail = ""
        while url and url[-1] in _TRAILING:
            url, tail = url[:-1], url[-1] + tail
        return (click(url) if _tracked(url, tracking) else url) + tail

    variants = {
        name: Variant(name, tuple(v.tiers), _HREF.sub(rewrite_href, v.html), _TEXT_URL.sub(rewrite_text, v.text))
        for name, v in built.variants.items()
    }
    where = str(built.folder / "manifest.json")
    for tier, name in built.tier_variant.items():
        if name not in variants:
            raise UserError(f"tier_variant.{tier} names an unknown variant {name!r}", where=where)

    subject = built.subject.strip()
    if built.ad and not subject.startswith(AD_PREFIX):
        subject = f"{AD_PREFIX} {subject}"
    if test:
        subject = TEST_PREFIX + subject
    return Prepared(issue_id, subject, built.ad, variants, dict(built.tier_variant), links)


class Fields:
    """One recipient's merge fields (names as in ``%%name%%``); tokens sign the delivery id, never
    the address. Built once per send: the prefixes are computed once, not per recipient."""

    def __init__(self, cfg: Config, signer: Signer):
        tracking = cfg.tracking.base_url.rstrip("/")
        self.u, self.o = f"{tracking}/u/", f"{tracking}/o/"
        self.tokens = signer.recipient_tokens

    def __call__(self, d: Delivery) -> dict[str, str]:
        o, u, r = self.tokens(d.id)
        return {
            "name": d.name.strip() or DEFAULT_NAME,
            "company": d.company,
            "unsubscribe_url": self.u + u,
            "open_url": self.o + o + ".gif",
            "r": r,
        }


def fields(cfg: Config, signer: Signer, d: Delivery) -> dict[str, str]:
    return Fields(cfg, signer)(d)


def html_values(values: dict[str, str]) -> dict[str, str]:
    """The same fields for the HTML part: name and company HTML-escaped."""
    return {**values, "name": html.escape(values["name"]), "company": html.escape(values["company"])}


def mailto(cfg: Config) -> str:
    return cfg.sender.unsubscribe_mailto or cfg.sender.from_email


def list_unsubscribe(cfg: Config, unsubscribe_url: str) -> str:
    """RFC 2369 / RFC 8058: the HTTPS one-click URL first, a mailto as the fallback."""
    return f"<{unsubscribe_url}>, <mailto:{mailto(cfg)}?subject=unsubscribe>"


def message_id(cfg: Config, issue: str, send_id: int, delivery_id: int) -> str:
    """Deterministic per delivery: a resend after an unknown outcome carries the same id, which
    receiving systems and mail clients use to collapse duplicates."""
    domain = cfg.sender.from_email.rpartition("@")[2] or "localhost"
    return f"<dangol.{issue}.{send_id}.{delivery_id}@{domain}>"


def _header(name: str, value: str) -> str:
    """One header line, non-ASCII as RFC 2047 encoded words (7-bit), folded with the spaces kept
    inside the encoded words (the policy folder can drop a space between two of them)."""
    if value.isascii():
        return f"{name}: {value}\r\n"
    return f"{name}: {Header(value, 'utf-8', header_name=name).encode(linesep=chr(13) + chr(10))}\r\n"


class Composer:
    """Per-recipient MIME bytes, fast: the headers that are the same for everyone are encoded once
    per send by the ``email`` package; per recipient only To, Message-ID, Date and List-Unsubscribe
    are formatted and the two filled bodies base64-encoded (7-bit safe, any line length)."""

    def __init__(self, cfg: Config, prep: Prepared, send_id: int):
        self.cfg, self.prep, self.send_id = cfg, prep, send_id
        self.boundary = f"=_dangol_{secrets.token_hex(12)}"
        s = cfg.sender
        static = [
            _header("Subject", prep.subject),
            f"From: {formataddr((s.from_name, s.from_email), charset='utf-8')}\r\n",
        ]
        if s.reply_to:
            static.append(_header("Reply-To", s.reply_to))
        static += [
            _header("List-Id", f"<{s.list_id}>"),
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
            "MIME-Version: 1.0\r\n",
            f'Content-Type: multipart/alternative; boundary="{self.boundary}"\r\n',
        ]
        self.static = "".join(static)

    def _part(self, subtype: str, body: str) -> str:
        encoded = base64.encodebytes(body.encode("utf-8")).decode("ascii").replace("\n", "\r\n")
        return (f"--{self.boundary}\r\nContent-Type: text/{subtype}; charset=\"utf-8\"\r\n"
                f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}")

    def build(self, d: Delivery, values: dict[str, str], *, now=None) -> bytes:
        v = self.prep.variants[d.variant]
        name = d.name.strip()
        to = formataddr((name, d.address), charset="utf-8") if name else d.address
        head = (
            f"To: {to}\r\n"
            f"Date: {format_datetime(now or dt.datetime.now(dt.timezone.utc))}\r\n"
            f"Message-ID: {message_id(self.cfg, self.prep.issue, self.send_id, d.id)}\r\n"
            f"List-Unsubscribe: <{values['unsubscribe_url']}>,\r\n <mailto:{mailto(self.cfg)}?subject=unsubscribe>\r\n"
        )
        return (
            self.static + head + "\r\n"
            + self._part("plain", v.text_merge.fill(values))
            + self._part("html", v.html_merge.fill(html_values(values)))
            + f"--{self.boundary}--\r\n"
        ).encode("ascii")


def render_bytes(cfg: Config, prep: Prepared, send_id: int, signer: Signer, d: Delivery) -> bytes:
    """One recipient's message, ready for the wire or the outbox."""
    composer = prep.composers.get(send_id)
    if composer is None:
        composer = prep.composers[send_id] = Composer(cfg, prep, send_id)
        composer.fields = Fields(cfg, signer)
    return composer.build(d, composer.fields(d))
