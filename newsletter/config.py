"""Load and validate config.yaml into typed dataclasses; errors name the key path (``send.smtp.port``)."""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import UserError


@dataclass
class Company:
    name: str = "Example Co."
    name_en: str = ""
    address: str = ""
    phone: str = ""
    email: str = ""
    business_registration: str = ""
    ceo: str = ""


@dataclass
class Sender:
    from_name: str = "Newsletter"
    from_email: str = "newsletter@example.com"
    reply_to: str = ""
    list_id: str = "newsletter.example.com"
    unsubscribe_mailto: str = ""


@dataclass
class Site:
    base_url: str = "http://127.0.0.1:8080"
    title: str = "Newsletter"
    description: str = ""
    language: str = "ko"


@dataclass
class Tracking:
    base_url: str = "http://127.0.0.1:8080"
    sendgrid_public_key: str = ""  # Event Webhook verification key (base64 DER); SENDGRID_WEBHOOK_PUBLIC_KEY wins


@dataclass
class Paths:
    content: str = "content"
    templates: str = "templates"
    build: str = "build"
    state: str = "state"
    outbox: str = "outbox"


@dataclass
class Lists:
    subscribers: str = "lists/subscribers.csv"
    key_customers: str = "lists/key-customers.csv"
    suppressions: str = "lists/suppressions.csv"
    out: str = "build/lists"
    header_map: dict[str, str] = field(default_factory=dict)


@dataclass
class Bounces:
    temporary_threshold: int = 3
    temporary_window_days: int = 90
    domain_block_share: float = 0.5


@dataclass
class Smtp:
    host: str = "127.0.0.1"
    port: int = 25
    security: str = "none"
    username: str = ""
    timeout: float = 30.0
    rejection_spike: float = 0.05     # pause the send when more than this share ...
    rejection_window: int = 500       # ... of the last N recipients was refused at RCPT/DATA


@dataclass
class SendGrid:
    api_host: str = "https://api.sendgrid.com"
    categories: list[str] = field(default_factory=lambda: ["webzine"])
    timeout: float = 60.0             # a request with no answer by then is `unknown`, never resent blindly
    retries: int = 5                  # 5xx / connection refused: attempts before rows are left pending
    backoff: float = 1.0              # first retry delay in seconds (doubles, with jitter)


@dataclass
class Send:
    backend: str = "outbox"
    rate_per_second: float = 50
    concurrency: int = 4
    smtp: Smtp = field(default_factory=Smtp)
    sendgrid: SendGrid = field(default_factory=SendGrid)


@dataclass
class Schedule:
    rule: str = "first tuesday 10:00"
    quiet_hours: str | None = "21:00-08:00"
    skip_holidays: bool = True
    catch_up_hours: float = 72  # send-due still sends a slot missed by up to this long (machine was off)


@dataclass
class Report:
    inactive_issues: int = 3


@dataclass
class Config:
    company: Company = field(default_factory=Company)
    sender: Sender = field(default_factory=Sender)
    site: Site = field(default_factory=Site)
    tracking: Tracking = field(default_factory=Tracking)
    timezone: str = "Asia/Seoul"
    paths: Paths = field(default_factory=Paths)
    lists: Lists = field(default_factory=Lists)
    bounces: Bounces = field(default_factory=Bounces)
    send: Send = field(default_factory=Send)
    schedule: Schedule = field(default_factory=Schedule)
    report: Report = field(default_factory=Report)
    root: Path = field(default_factory=Path.cwd)
    source: str = "config.yaml"

    def path(self, relative: str | os.PathLike) -> Path:
        """A path from the config, resolved against the folder that holds config.yaml."""
        p = Path(relative)
        return p if p.is_absolute() else self.root / p

    @property
    def database_url(self) -> str:
        """DATABASE_URL from the environment, else a SQLite file under paths.state."""
        url = os.environ.get("DATABASE_URL")
        if url:
            return url
        return f"sqlite:///{self.path(self.paths.state) / 'dangol.sqlite3'}"


def _coerce(tp, value, where: str, source: str):
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if value is None:
            return tp()
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected a mapping, got {type(value).__name__}", where=source)
        return _build(tp, value, where, source)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        tp = next(a for a in args if a is not type(None))
        return _coerce(tp, value, where, source)
    if origin is list:
        if not isinstance(value, list):
            raise UserError(f"{where}: expected a list", where=source)
        return list(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected a mapping", where=source)
        return {str(k): str(v) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise UserError(f"{where}: expected true or false, got {value!r}", where=source)
        return value
    if tp in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{where}: expected a number, got {value!r}", where=source)
        return tp(value)
    if tp is str:
        if isinstance(value, (dict, list)):
            raise UserError(f"{where}: expected text", where=source)
        return "" if value is None else str(value)
    return value


def _build(cls, data: dict, prefix: str, source: str):
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        where = f"{prefix}.{key}" if prefix else str(key)
        if key not in known or key in ("root", "source"):
            raise UserError(f"unknown key {where!r}", where=source)
        kwargs[key] = _coerce(hints[key], value, where, source)
    return cls(**kwargs)


def load_config(path: str | os.PathLike | None = None) -> Config:
    """Read config.yaml (default: ./config.yaml, or $NEWSLETTER_CONFIG); a missing file gives the defaults."""
    path = Path(path or os.environ.get("NEWSLETTER_CONFIG", "config.yaml"))
    data: dict = {}
    if path.exists():
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            raise UserError(f"not valid YAML ({getattr(exc, 'problem', exc)})", where=f"{path}{line}") from None
        if not isinstance(data, dict):
            raise UserError("expected a mapping at the top level", where=str(path))
    cfg = _build(Config, data, "", str(path))
    cfg.root = path.resolve().parent
    cfg.source = str(path)
    return cfg


def secret(name: str, *, required: bool = True, default: str | None = None) -> str | None:
    """A secret from the environment; never from config.yaml or the repo."""
    value = os.environ.get(name, default)
    if required and not value:
        raise UserError(f"environment variable {name} is not set")
    return value
