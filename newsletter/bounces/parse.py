"""Classify one returned message: permanent, temporary, complaint or not_a_bounce, with recipient and status.

Order of evidence: an ARF feedback report is a complaint; an RFC 3464 delivery-status part is read field by
field (Final-Recipient, Action, Status, Diagnostic-Code; the Status class decides: 5 permanent, 4 temporary);
anything else that looks like a bounce (MAILER-DAEMON/postmaster sender, X-Failed-Recipients, a failure
subject in English or Korean) goes through flufl.bounce's detectors for qmail, exim, Exchange and friends,
then our own reading of the notice text (Korean hosting bounces, VERP return paths). Auto-replies, vacation
notices, challenge-response requests and human replies are ``not_a_bounce``.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.header import Header, decode_header, make_header
from email.message import Message

from flufl.bounce import all_failures

from ..lists.normalize import canonicalize

KINDS = ("permanent", "temporary", "complaint", "not_a_bounce")


@dataclass(frozen=True, slots=True)
class Bounce:
    """One recipient's outcome in a returned message (recipient None for not_a_bounce)."""

    recipient: str | None
    kind: str
    status: str | None = None
    diagnostic: str = ""
    how: str = ""  # which evidence decided: arf | dsn | flufl | text | verp | auto-reply | ...


_ENHANCED = re.compile(r"(?<![\w.])([245]\.\d{1,3}\.\d{1,3})(?![.\d])")
_SMTP = re.compile(r"(?<![\w.:\-])([245]\d\d)(?=[ \-])")
_ADDR = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_VERP = re.compile(r"[\w.-]+\+(?P<local>[^=@\s]+)=(?P<domain>[^@\s]+)@", re.UNICODE)
_BOUNCE_FROM = re.compile(r"mailer-daemon|postmaster|mail delivery (sub)?system", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (status notification \(failure|failure|has failed)|mail delivery failed"
    r"|failure notice|returned mail|non-?delivery|delivery notification|could not be delivered|delayed mail"
    r"|반송|전송\s*실패|발송\s*실패|배달\s*실패|전달\s*실패|수신\s*실패", re.I)
_AUTO_SUBJECT = re.compile(
    r"out of (the )?office|auto(matic)?[ -]?(reply|response)|vacation|away from|on leave|holiday"
    r"|부재|자동\s*(회신|응답|답장)|휴가", re.I)
_CHALLENGE = re.compile(r"confirm|verif|approv|challenge|spam ?arrest|인증|승인", re.I)
_ORIGINAL_MARKERS = re.compile(
    r"^-+ ?(this is a copy of|below this line|original message|the original message)|^original message"
    r"|^-+\s*원본|^Received: from", re.I | re.M)
_PERMANENT_WORDS = re.compile(r"permanent|fatal|given up|no such user|user unknown|does not exist|not found|"
                              r"수신자 주소 없음|존재하지 않", re.I)
_TEMPORARY_WORDS = re.compile(r"temporar|delayed|will be retried|still being retried|try again later|일시", re.I)


def header_text(msg: Message, name: str) -> str:
    value = msg.get(name)
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except Exception:  # a broken encoded-word: the raw header is still informative
        return str(value)


def _u(value) -> str:
    """A header value as text; 8-bit (UTF-8) bytes that compat32 wrapped as unknown-8bit are decoded, not mangled."""
    if isinstance(value, Header):
        return "".join(p.decode("utf-8" if c in (None, "unknown-8bit") else c, "replace") if isinstance(p, bytes)
                       else p for p, c in decode_header(value))
    return "" if value is None else str(value)


def _addr(value) -> str | None:
    """An address from a DSN field such as ``rfc822; <a@b>`` or ``utf-8; a@b``."""
    value = _u(value).split(";", 1)[-1].strip()
    value = canonicalize(value)
    return value if "@" in value else None


def _unfold(value) -> str:
    return " ".join(_u(value).split()) if value else ""


def _classify_status(status: str | None, action: str | None = None, fallback: str = "") -> str:
    if status and status[0] == "5":
        return "permanent"
    if status and status[0] == "4":
        return "temporary"
    if action:
        a = action.lower()
        if a == "failed":
            return "permanent"
        if a == "delayed":
            return "temporary"
    return fallback


def _parts(msg: Message):
    """All MIME parts, without descending into returned messages (message/rfc822)."""
    yield msg
    if msg.is_multipart():
        if msg.get_content_type() == "message/rfc822":
            return
        for part in msg.get_payload():
            if isinstance(part, Message):
                yield from _parts(part)


def _arf(msg: Message) -> list[Bounce] | None:
    for part in _parts(msg):
        if part.get_content_type() != "message/feedback-report":
            continue
        fields = _report_fields(part)
        first = fields[0] if fields else Message()
        recipient = _addr(first.get("Original-Rcpt-To", "") or first.get("Removal-Recipient", ""))
        if recipient is None:
            for inner in _parts(msg):
                if inner.get_content_type() == "message/rfc822" and isinstance(inner.get_payload(), list):
                    recipient = _addr(header_text(inner.get_payload()[0], "To"))
        recipient = recipient or _verp(msg)
        feedback = _unfold(first.get("Feedback-Type", "abuse"))
        return [Bounce(recipient, "complaint", None, f"feedback report: {feedback}", "arf")]
    return None


def _report_fields(part: Message) -> list[Message]:
    """The field blocks of a delivery-status or feedback-report part, however the parser stored them."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = payload if isinstance(payload, str) else (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    blocks = re.split(r"\r?\n\s*\r?\n", text.strip())
    return [email.message_from_string(b) for b in blocks if b.strip()]


def _dsn(msg: Message) -> list[Bounce] | None:
    found = None
    for part in _parts(msg):
        if part.get_content_type() not in ("message/delivery-status", "message/global-delivery-status"):
            continue
        found = found or []
        for block in _report_fields(part)[1:] or _report_fields(part):
            recipient = _addr(block.get("Final-Recipient", "") or block.get("Original-Recipient", ""))
            if recipient is None:
                continue
            action = _unfold(block.get("Action", "")).lower() or None
            status_field = _unfold(block.get("Status", ""))
            m = _ENHANCED.search(status_field)
            status = m.group(1) if m else None
            if action in ("delivered", "relayed", "expanded"):
                continue
            diagnostic = _unfold(block.get("Diagnostic-Code", "")).split(";", 1)[-1].strip()
            kind = _classify_status(status, action, "permanent")
            found.append(Bounce(recipient, kind, status, diagnostic, "dsn"))
    return found


def _verp(msg: Message) -> str | None:
    for name in ("To", "Delivered-To", "X-Original-To", "Envelope-To"):
        for value in msg.get_all(name, []):
            m = _VERP.search(str(value))
            if m:
                return canonicalize(f"{m.group('local')}@{m.group('domain')}")
    return None


def _text(msg: Message) -> str:
    """The notice text: text parts outside returned messages, cut before any quoted original."""
    chunks = []
    for part in _parts(msg):
        if part.get_content_maintype() != "text" or part.get_content_type() == "text/rfc822-headers":
            continue
        if part.get_content_type() == "text/html" and chunks:
            continue
        data = part.get_payload(decode=True) or b""
        charset = part.get_content_charset() or "utf-8"
        try:
            text = data.decode(charset, errors="replace")
        except LookupError:
            text = data.decode("utf-8", errors="replace")
        if part.get_content_type() == "text/html":
            text = re.sub(r"<[^>]+>", " ", text)
        cut = _ORIGINAL_MARKERS.search(text)
        chunks.append(text[: cut.start()] if cut else text)
    return "\n".join(chunks)


def _own_addresses(msg: Message) -> set[str]:
    own = set()
    for name in ("From", "To", "Return-Path", "Delivered-To", "X-Original-To", "Sender", "Reply-To", "Envelope-To"):
        for value in msg.get_all(name, []):
            own.update(canonicalize(a) for a in _ADDR.findall(header_text(msg, name) or str(value)))
    return own


def _looks_like_bounce(msg: Message) -> bool:
    return bool(
        msg.get("X-Failed-Recipients")
        or _BOUNCE_FROM.search(header_text(msg, "From"))
        or _BOUNCE_SUBJECT.search(header_text(msg, "Subject"))
        or str(msg.get("Return-Path", "")).strip() == "<>" and not _is_auto_reply(msg)
    )


def _is_auto_reply(msg: Message) -> bool:
    auto = str(msg.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(msg.get("Precedence", "")).strip().lower()
    return bool(
        msg.get("X-Autoreply") or msg.get("X-Autorespond") or msg.get("X-Auto-Response-Suppress") == "All"
        or auto != "no" or precedence in ("auto_reply", "bulk", "junk", "list")
        or _AUTO_SUBJECT.search(header_text(msg, "Subject"))
    )


def _line_with(text: str, needle: str) -> str:
    for line in text.splitlines():
        if needle in line:
            return " ".join(line.split())
    return ""


def _plain(msg: Message) -> list[Bounce]:
    """Non-standard bounces: flufl.bounce's detectors, then the notice text, then a VERP return path."""
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a detector tripping over a malformed message must not stop a scan
        temporary, permanent = set(), set()
    flufl = {canonicalize(a.decode("utf-8", "replace")): "temporary" for a in temporary}
    flufl.update({canonicalize(a.decode("utf-8", "replace")): "permanent" for a in permanent})
    text = _text(msg)
    failed = [canonicalize(a) for a in str(msg.get("X-Failed-Recipients", "")).split(",") if "@" in a]
    own = _own_addresses(msg)
    recipients = list(dict.fromkeys([*flufl, *failed]))
    how = "flufl" if flufl else "text"
    if not recipients:
        recipients = [a for a in dict.fromkeys(canonicalize(a) for a in _ADDR.findall(text)) if a not in own]
        recipients = [a for a in recipients if not _BOUNCE_FROM.search(a)]
    if not recipients and (verp := _verp(msg)):
        recipients, how = [verp], "verp"
    out = []
    for recipient in recipients:
        pos = text.lower().find(recipient)
        window = text[pos: pos + 600] if pos >= 0 else text
        m = _ENHANCED.search(window) or _ENHANCED.search(text)
        status = m.group(1) if m else None
        code = _SMTP.search(window) or _SMTP.search(text)
        words = "permanent" if _PERMANENT_WORDS.search(text) else "temporary" if _TEMPORARY_WORDS.search(text) else ""
        kind = flufl.get(recipient) or _classify_status(status) or _classify_status(code.group(1) if code else None) \
            or words or "temporary"
        diagnostic = _line_with(text, status) if status else (_line_with(text, code.group(0)) if code else "")
        out.append(Bounce(recipient, kind, status, diagnostic, how))
    return out


def classify(raw: bytes) -> list[Bounce]:
    """Every failed recipient of one raw message, or a single not_a_bounce entry."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    result = _arf(msg)
    if result:
        return result
    result = _dsn(msg)
    if result:
        return result
    if result is None and _looks_like_bounce(msg):
        result = _plain(msg)
        if result:
            return result
    if _is_auto_reply(msg):
        why = "challenge-response request" if _CHALLENGE.search(header_text(msg, "Subject")) else "auto-reply"
    else:
        why = "no delivery failure found"
    return [Bounce(None, "not_a_bounce", None, why, "none")]
