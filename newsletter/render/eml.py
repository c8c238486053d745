"""A .eml preview of one variant: open it in a mail client to see the issue as a recipient would.

multipart/alternative with the text part first, UTF-8 subject (already carrying ``(광고)`` for ads),
placeholders filled with sample values (the real values are filled per recipient by the send step).
"""

from __future__ import annotations

import datetime as dt
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, make_msgid
from zoneinfo import ZoneInfo

TRANSPARENT_GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"


def preview_values(cfg) -> dict[str, str]:
    tracking = cfg.tracking.base_url.rstrip("/")
    return {
        "name": "홍길동",
        "company": "예시상사",
        "unsubscribe_url": f"{tracking}/u/preview",
        "open_url": TRANSPARENT_GIF,
        "r": "preview",
    }


def fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(f"%%{key}%%", value)
    return text


def preview_eml(cfg, *, subject: str, html: str, text: str, date: dt.date, issue_id: str) -> bytes:
    """The preview message.

    Built with the compat32 API and ``email.header.Header`` on purpose: Python 3.11's ``EmailMessage``
    folds a long UTF-8 subject into encoded words and drops the space at the fold
    ("오픈과 겨울" comes back as "오픈과겨울").
    """
    values = preview_values(cfg)
    sender = cfg.sender
    msg = MIMEMultipart("alternative")
    msg["Subject"] = Header(subject, "utf-8")
    msg["From"] = formataddr((sender.from_name, sender.from_email), charset="utf-8")
    msg["To"] = formataddr((values["name"], "preview@example.invalid"), charset="utf-8")
    if sender.reply_to:
        msg["Reply-To"] = sender.reply_to
    sent = dt.datetime.combine(date, dt.time(10, 0), tzinfo=ZoneInfo(cfg.timezone))
    msg["Date"] = format_datetime(sent)
    msg["Message-ID"] = make_msgid(idstring=f"preview.{issue_id}", domain=sender.from_email.partition("@")[2] or None)
    msg["List-Unsubscribe"] = f"<{values['unsubscribe_url']}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["X-Newsletter-Issue"] = issue_id
    msg.attach(MIMEText(fill(text, values), "plain", "utf-8"))   # text first: clients show the last part they can
    msg.attach(MIMEText(fill(html, values), "html", "utf-8"))
    return msg.as_bytes()
