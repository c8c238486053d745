"""Read list files as Korean offices write them: CSV in UTF-8 (with or without BOM) or CP949/EUC-KR, or .xlsx,
with Korean or English headers mapped to canonical column names (``lists.header_map`` in config.yaml).

Nothing is dropped quietly: a row that cannot be decoded or has the wrong number of columns comes back as a
``BadRow`` (file, line, why) so the caller lists it in rejected.csv and prints one line for it.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from ..errors import UserError

# Column names the stage understands; header cells are mapped onto these.
COLUMNS = ("email", "name", "company", "tier", "tags", "consent_at", "owner", "customer_id", "reason", "at")
DEFAULT_ALIASES = {"e-mail": "email", "email address": "email", "e-mail address": "email", "mail": "email"}

UNREADABLE = "\ufffeUNREADABLE\ufffe"
MAX_UNREADABLE_SHARE = 0.1  # more undecodable lines than this: the encoding is wrong, not a few rows


@dataclass(slots=True)
class BadRow:
    """A row that could not be read as data; still accounted for in rejected.csv."""

    index: int  # 0-based data-row index (header excluded)
    line: int  # line in the file (CSV) or sheet row (xlsx), 1-based
    reason: str  # unreadable | columns
    detail: str
    email: str = ""  # whatever stands in the email column, if it could be read


@dataclass
class Table:
    """A list file read into canonical columns: ``rows`` are (index, line, fields) with fields in ``columns`` order."""

    path: Path
    columns: list[str]
    rows: list[tuple[int, int, list[str]]] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)
    encoding: str = "utf-8"
    ignored_columns: list[str] = field(default_factory=list)
    stream: Iterator[tuple[int, int, list[str] | BadRow]] | None = None  # lazy reading only
    size_hint: int = 0

    def col(self, name: str) -> int | None:
        return self.columns.index(name) if name in self.columns else None

    @property
    def count(self) -> int:
        return len(self.rows) + len(self.bad)


def _key(header: str) -> str:
    return unicodedata.normalize("NFKC", header).replace("\ufeff", "").strip().lower()


def map_headers(cells: Iterable[str], header_map: Mapping[str, str], where: str) -> tuple[list[str], list[str]]:
    """Canonical column names for a header row (``""`` for a column we ignore) and the ignored header cells."""
    lookup = {**DEFAULT_ALIASES, **{_key(k): v for k, v in header_map.items()}}
    out, ignored = [], []
    for cell in cells:
        k = _key(cell or "")
        name = k if k in COLUMNS else lookup.get(k, "")
        if name and name in out:
            raise UserError(f"two columns map to {name!r} ({cell!r} and an earlier one)", where=where)
        out.append(name)
        if not name and k:
            ignored.append(cell)
    return out, ignored


def detect_encoding(data: bytes, path: Path) -> str:
    """UTF-8 (BOM or not), UTF-16 with a BOM, or CP949 (which covers EUC-KR) — else a clear error.

    A UTF-8 file with a few broken lines stays UTF-8 (those lines become unreadable rows): CP949 would decode
    UTF-8 Korean without complaint, as garbage, so it is only tried when UTF-8 fails on most non-ASCII lines.
    """
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if _decodes(data, "utf-8"):
        return "utf-8"
    lines = [line for line in data.split(b"\n") if not line.isascii()]
    for enc in ("utf-8", "cp949"):
        bad = sum(1 for line in lines if not _decodes(line, enc))
        evidence = len(lines) - bad  # non-ASCII lines that do decode: UTF-8 needs some, CP949 rarely passes UTF-8
        if evidence and bad <= max(1, MAX_UNREADABLE_SHARE * len(lines)) and _decodes(data.split(b"\n", 1)[0], enc):
            return enc
    guess = ""
    try:
        from charset_normalizer import from_bytes

        match = from_bytes(data[:200_000]).best()
        guess = f" (it looks like {match.encoding})" if match else ""
    except Exception:  # the guess is only a hint in the message
        pass
    raise UserError(f"not UTF-8 or CP949/EUC-KR{guess}; save it as UTF-8 CSV or pass --encoding", where=str(path))


def _decodes(line: bytes, enc: str) -> bool:
    try:
        line.decode(enc)
        return True
    except UnicodeDecodeError:
        return False


def _decode(data: bytes, enc: str) -> tuple[str, dict[int, str]]:
    """Text of the file; lines that do not decode are replaced by a marker, their text kept for the report."""
    try:
        return data.decode(enc), {}
    except UnicodeDecodeError:
        pass
    except LookupError:
        raise UserError(f"unknown encoding {enc!r}") from None
    lines, broken = [], {}
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(line.decode(enc))
        except UnicodeDecodeError:
            broken[number] = line.decode(enc, errors="replace").strip()
            lines.append(UNREADABLE)
    return "\n".join(lines), broken


def read_table(path: str | Path, *, header_map: Mapping[str, str] | None = None, encoding: str | None = None,
               required: tuple[str, ...] = ("email",), lazy: bool = False) -> Table:
    """Read a CSV or .xlsx list into a ``Table``; raise ``UserError`` only when the file as a whole is unusable.

    ``lazy``: rows are not collected but streamed from ``table.stream`` (a million rows need not sit in memory
    twice); ``table.size_hint`` then estimates their number for a progress bar.
    """
    path = Path(path)
    if not path.exists():
        raise UserError("file not found", where=str(path))
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        records, enc = _xlsx_records(path), "xlsx"
        broken: dict[int, str] = {}
        size_hint = 0
    else:
        data = path.read_bytes()
        if not data.strip():
            raise UserError("the file is empty (no header row)", where=str(path))
        enc = encoding or detect_encoding(data, path)
        text, broken = _decode(data, enc)
        size_hint = data.count(b"\n")
        del data
        records = _csv_records(text)
    first = next(records, None)
    if first is None:
        raise UserError("the file is empty (no header row)", where=str(path))
    header_line, header = first
    if header == [UNREADABLE]:
        raise UserError(f"the header row cannot be decoded as {enc}; pass --encoding", where=f"{path}:{header_line}")
    columns, ignored = map_headers(header, header_map or {}, f"{path}:{header_line}")
    missing = [c for c in required if c not in columns]
    if missing:
        raise UserError(f"no {', '.join(missing)} column (headers: {', '.join(h for h in header if h)}); "
                        f"map yours in lists.header_map in config.yaml", where=f"{path}:{header_line}")
    table = Table(path, columns, encoding=enc, ignored_columns=ignored, size_hint=size_hint)
    stream = _classify(table, records, broken)
    if lazy:
        table.stream = stream
    else:
        table.rows = [(index, line, item) for index, line, item in stream if not isinstance(item, BadRow)]
    return table


def _classify(table: Table, records, broken: dict[int, str]):
    """(index, line, fields) per data row, or (index, line, BadRow) for one that cannot be used (also kept in table.bad)."""
    width, enc = len(table.columns), table.encoding
    email_col = table.col("email")
    for index, (line, fields) in enumerate(records):
        if len(fields) == width:
            yield index, line, fields
            continue
        if fields == [UNREADABLE]:
            bad = BadRow(index, line, "unreadable", f"cannot be decoded as {enc}: {broken.get(line, '')!r}")
        elif len(fields) > width and not any(f.strip() for f in fields[width:]):
            yield index, line, fields[:width]
            continue
        else:
            email = fields[email_col] if email_col is not None and email_col < len(fields) else ""
            bad = BadRow(index, line, "columns", f"{len(fields)} columns, the header has {width}", email)
        table.bad.append(bad)
        yield index, line, bad


def _csv_records(text: str):
    """(line, fields) for each non-blank CSV record; line is where the record starts."""
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    for fields in reader:
        line, start = start, reader.line_num + 1
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        yield line, fields


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _xlsx_records(path: Path):
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a broken file
        raise UserError(f"cannot open as an Excel workbook ({exc})", where=str(path)) from None
    sheet = book.worksheets[0]
    width = None
    for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
        fields = [_cell(v) for v in row]
        while fields and not fields[-1].strip() and (width is None or len(fields) > width):
            fields.pop()
        if not any(f.strip() for f in fields):
            continue
        if width is None:
            width = len(fields)
        elif len(fields) < width:
            fields += [""] * (width - len(fields))
        yield number, fields
    book.close()


def write_csv(path: Path, header: Iterable[str], rows: Iterable[Iterable]) -> None:
    """UTF-8 with BOM so Korean Excel opens it right; CRLF as csv writes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
