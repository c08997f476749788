"""Lists as files people open in a spreadsheet: CSV streamed, XLSX written in constant memory.

Every list page's export goes through ``export``: the rows come from the same scoped query the page
reads (so a file never shows more than the page), each cell a spreadsheet would run as a formula is
neutralised, the file is named for what it holds and when, and the export itself is recorded on the
audit chain (who, which list, which filters, how many rows when that is known before sending).
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

import xlsxwriter
from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import register_converter
from django.utils import timezone

from backoffice.audit.services import record_decision

FORMATS: tuple[str, ...] = ("csv", "xlsx")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# What a spreadsheet reads as the start of a formula (or of a DDE payload, after a tab or CR).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# What one XLSX sheet holds below its header row.
XLSX_MAX_ROWS = 1_048_575
# How many rows a server-side cursor brings over at a time: memory stays flat however long the list.
CHUNK_SIZE = 2000


class FormatConverter:
    """``<export_format:fmt>`` in a URL: one of ``FORMATS``; anything else is no such page."""

    regex = "|".join(FORMATS)

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(FormatConverter, "export_format")

Cell = str | int | Decimal | bool | dt.date | dt.datetime | None
Row = TypeVar("Row")


@dataclass(frozen=True)
class Column(Generic[Row]):
    """One column of a file: its header and how to read its cell off a row."""

    header: str
    value: Callable[[Row], Cell]


def field(header: str, path: str) -> Column[Any]:
    """A column read by attribute path (``"account.number"``); a missing link reads as empty."""

    def read(row: Any) -> Cell:
        value = row
        for name in path.split("."):
            value = getattr(value, name, None)
            if value is None:
                return None
        return value  # type: ignore[no-any-return]

    return Column(header, read)


def neutralise(text: str) -> str:
    """Text a spreadsheet would run as a formula gets a leading apostrophe, so it stays text."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def text_of(value: Cell) -> str:
    """A cell as CSV text. Numbers are ours, not typed by anyone: only text is neutralised, so a
    negative P&L stays a number a spreadsheet can add up."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return _utc(value)
    if isinstance(value, dt.date | int | Decimal):
        return str(value)
    return neutralise(str(value))


def file_name(what: str, fmt: str, at: dt.datetime | None = None) -> str:
    """``book-ACCT123-2026-12-02T0930Z.csv``: what the file holds and as of when (UTC)."""
    moment = (at or timezone.now()).astimezone(dt.UTC)
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in what)
    return f"{safe}-{moment:%Y-%m-%dT%H%MZ}.{fmt}"


class TooManyRows(Exception):
    """More rows than a spreadsheet's sheet holds."""


class _Echo:
    """A file that hands back what is written, so ``csv.writer`` can feed a streaming response."""

    def write(self, value: str) -> str:
        return value


def csv_lines(columns: Sequence[Column[Row]], rows: Iterable[Row]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow([column.header for column in columns])
    for row in rows:
        yield writer.writerow([text_of(column.value(row)) for column in columns])


def _exact_float(value: Decimal) -> float | None:
    """The number as a spreadsheet holds it (a double), only when that loses nothing."""
    number = float(value)
    return number if Decimal(repr(number)) == value else None


def write_xlsx(path: str, title: str, columns: Sequence[Column[Row]], rows: Iterable[Row]) -> int:
    """Write the rows to ``path`` one at a time (xlsxwriter's constant memory mode flushes each
    row to disk as the next begins); answers how many rows were written."""
    book = xlsxwriter.Workbook(
        path, {"constant_memory": True, "tmpdir": os.path.dirname(path), "strings_to_formulas": False}
    )
    sheet = book.add_worksheet(title[:31])
    bold, day = book.add_format({"bold": True}), book.add_format({"num_format": "yyyy-mm-dd"})
    for col, column in enumerate(columns):
        sheet.write_string(0, col, column.header, bold)
    count = 0
    for count, row in enumerate(rows, start=1):
        if count > XLSX_MAX_ROWS:
            raise TooManyRows(f"More than {XLSX_MAX_ROWS:,} rows: a spreadsheet's sheet cannot hold them.")
        for col, column in enumerate(columns):
            value = column.value(row)
            # Each type written by its own method: ``write`` would guess, and take "=..." for a formula.
            if value is None:
                continue
            if isinstance(value, bool):
                sheet.write_boolean(count, col, value)
            elif isinstance(value, int) or (isinstance(value, Decimal) and _exact_float(value) is not None):
                sheet.write_number(count, col, float(value))
            elif isinstance(value, dt.datetime):
                sheet.write_string(count, col, _utc(value))
            elif isinstance(value, dt.date):
                sheet.write_datetime(count, col, value, day)
            else:
                sheet.write_string(count, col, text_of(value))
    sheet.freeze_panes(1, 0)
    book.close()
    return count


def export(
    request: HttpRequest,
    *,
    fmt: str,
    what: str,
    about: str = "",
    columns: Sequence[Column[Row]],
    rows: Iterable[Row],
    filters: Mapping[str, Any],
) -> StreamingHttpResponse | FileResponse | HttpResponse:
    """The file for one list, in ``fmt`` (one of ``FORMATS``; the URL refuses any other).

    ``what`` names the list (``book``), ``about`` narrows it for the file's name (an account, a
    batch), ``filters`` are what the viewer asked for, as the audit records them. A queryset is read
    through a server-side cursor, a chunk at a time. CSV streams
    straight from the rows; XLSX is written to a temporary file first (a zip cannot be streamed in
    order), so its row count is known and recorded.
    """
    if fmt not in FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}")
    if isinstance(rows, QuerySet):
        rows = rows.iterator(chunk_size=CHUNK_SIZE)  # a server-side cursor: never every row at once
    name = f"{what}-{about}" if about else what
    filename = file_name(name, fmt)
    recorded = {key: _plain(value) for key, value in filters.items() if value not in (None, "", (), [])}
    if fmt == "csv":
        _record(request, what, fmt, filename, recorded, rows=None)
        response = StreamingHttpResponse(csv_lines(columns, rows), content_type=CONTENT_TYPES["csv"])
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
    handle = tempfile.NamedTemporaryFile(prefix="export-", suffix=".xlsx", delete=False)  # noqa: SIM115
    try:
        handle.close()
        count = write_xlsx(handle.name, what, columns, rows)
        stream = open(handle.name, "rb")  # noqa: SIM115 - the response closes it once sent
    except TooManyRows as too_many:
        return refused(request, {"__all__": [f"{too_many} Export CSV, or narrow the filters."]})
    finally:
        os.unlink(handle.name)  # the open file stays readable until the response closes it
    _record(request, what, fmt, filename, recorded, rows=count)
    return FileResponse(stream, as_attachment=True, filename=filename, content_type=CONTENT_TYPES["xlsx"])


def _plain(value: Any) -> Any:
    """A filter as the audit's JSON holds it."""
    if isinstance(value, dt.date | Decimal):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


def _record(
    request: HttpRequest, what: str, fmt: str, filename: str, filters: dict[str, Any], *, rows: int | None
) -> None:
    # On the chain like a sign-in: who took which list out of the building, and with which filters.
    record_decision(
        action="exported",
        actor=request.user,
        subject_type="export",
        subject_id=what,
        after={"list": what, "format": fmt, "file": filename, "filters": filters, "rows": rows},
    )


def refused(request: HttpRequest, errors: Mapping[str, Any]) -> HttpResponse:
    """Filters that cannot be read: say which and why (400), rather than export something else."""
    problems = [
        f"{name.replace('_', ' ')}: {message}" if name != "__all__" else str(message)
        for name, messages in errors.items()
        for message in messages
    ]
    return render(request, "export_refused.html", {"problems": problems}, status=400)
