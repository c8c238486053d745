"""From the built issue to one message per recipient: prepare once per send, fill per recipient.

``prepare`` reads ``build/<issue>/manifest.json`` (the render → send contract in docs/architecture.md)
and rewrites every tracked link once into ``<tracking>/c/%%r%%~<link-token>``; filling a recipient is
then a handful of ``str.replace`` calls, and ``mime`` wraps the result in a standards-clean message.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

from ..config import Config
from ..errors import UserError
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
    tiers: list[str]
    html: str   # links rewritten, %%placeholders%% kept
    text: str


@dataclass
class Prepared:
    """One send's compiled bodies: everything that does not depend on the recipient."""

    issue: str
    subject: str
    ad: bool
    variants: dict[str, Variant]
    tier_variant: dict[str, str]
    links: dict[str, str] = field(default_factory=dict)  # original URL -> link token

    def variant_for(self, tier: str) -> str:
        try:
            return self.tier_variant[tier]
        except KeyError:
            raise UserError(f"the build has no variant for tier {tier!r}", where=f"build/{self.issue}/manifest.json") from None


def load_manifest(cfg: Config, issue_id: str) -> tuple[dict, Path]:
    """The built issue's manifest and folder, or a clear error telling the user to build first."""
    folder = cfg.path(cfg.paths.build) / issue_id
    path = folder / "manifest.json"
    if not path.exists():
        raise UserError(f"issue {issue_id} is not built yet (run: newsletter build {issue_id})", where=str(path))
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"not valid JSON ({exc.msg}, line {exc.lineno})", where=str(path)) from None
    for key in ("subject", "variants", "tier_variant"):
        if key not in manifest:
            raise UserError(f"missing field {key!r}", where=str(path))
    return manifest, folder


def _read(folder: Path, rel: str, where: str) -> str:
    path = folder / rel
    if not path.exists():
        raise UserError(f"file {rel!r} named by the manifest is missing", where=where)
    return path.read_text(encoding="utf-8")


def _tracked(url: str, tracking: str) -> bool:
    return "%%" not in url and not url.startswith(tracking + "/")


def prepare(cfg: Config, issue_id: str, signer: Signer, *, test: bool = False) -> Prepared:
    """Read the build and rewrite its links once for this send (link tokens are per URL, not per recipient)."""
    manifest, folder = load_manifest(cfg, issue_id)
    where = str(folder / "manifest.json")
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

    variants = {}
    for name, v in manifest["variants"].items():
        variants[name] = Variant(
            name=name,
            tiers=list(v.get("tiers", [])),
            html=_HREF.sub(rewrite_href, _read(folder, v["html"], where)),
            text=_TEXT_URL.sub(rewrite_text, _read(folder, v["text"], where)),
        )
    for tier, name in manifest["tier_variant"].items():
        if name not in variants:
            raise UserError(f"tier_variant.{tier} names an unknown variant {name!r}", where=where)

    subject = manifest["subject"].strip()
    ad = bool(manifest.get("ad"))
    if ad and not subject.startswith(AD_PREFIX):
        subject = f"{AD_PREFIX} {subject}"
    if test:
        subject = TEST_PREFIX + subject
    return Prepared(issue_id, subject, ad, variants, dict(manifest["tier_variant"]), links)


def fields(cfg: Config, signer: Signer, d: Delivery) -> dict[str, str]:
    """One recipient's merge fields; tokens sign the delivery id, never the address."""
    tracking = cfg.tracking.base_url.rstrip("/")
    name = d.name.strip() or DEFAULT_NAME
    return {
        "%%name%%": name,
        "%%company%%": d.company,
        "%%unsubscribe_url%%": f"{tracking}/u/{signer.recipient('u', d.id)}",
        "%%open_url%%": f"{tracking}/o/{signer.recipient('o', d.id)}.gif",
        "%%r%%": signer.recipient("r", d.id),
    }


def fill(template: str, values: dict[str, str], *, escape: bool) -> str:
    for key, value in values.items():
        if key in ("%%name%%", "%%company%%") and escape:
            value = html.escape(value)
        template = template.replace(key, value)
    return template


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


def mime(cfg: Config, prep: Prepared, send_id: int, d: Delivery, values: dict[str, str], *, now=None) -> EmailMessage:
    """multipart/alternative (text first, then HTML) with UTF-8 headers encoded for 7-bit transport."""
    v = prep.variants[d.variant]
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = prep.subject
    msg["From"] = Address(cfg.sender.from_name, addr_spec=cfg.sender.from_email)
    msg["To"] = Address(d.name.strip(), addr_spec=d.address)
    if cfg.sender.reply_to:
        msg["Reply-To"] = cfg.sender.reply_to
    msg["Date"] = format_datetime(now or dt.datetime.now(dt.timezone.utc))
    msg["Message-ID"] = message_id(cfg, prep.issue, send_id, d.id)
    msg["List-Id"] = f"<{cfg.sender.list_id}>"
    msg["List-Unsubscribe"] = list_unsubscribe(cfg, values["%%unsubscribe_url%%"])
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(fill(v.text, values, escape=False), subtype="plain", charset="utf-8")
    msg.add_alternative(fill(v.html, values, escape=True), subtype="html", charset="utf-8")
    return msg


def render_bytes(cfg: Config, prep: Prepared, send_id: int, signer: Signer, d: Delivery) -> bytes:
    return mime(cfg, prep, send_id, d, fields(cfg, signer, d)).as_bytes()
