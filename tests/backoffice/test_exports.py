"""Exports of every list: the rows the page would show (filters, desk), files that open in a real
reader, formulas neutralised, each export on the audit chain, bad filters a 400."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backoffice import exports, roles
from backoffice.audit.models import AuditEntry
from instructions.models import Batch
from positions.models import Account, CloseRequest, Desk
from tests.access.test_scoping import book
from tests.conftest import make_user
from tests.positions.factories import make_position, option_symbol

pytestmark = pytest.mark.django_db(databases=["default", "audit"])

# Every list's export, and a column that carries the account number.
LISTS = {
    "positions:book_export": "Account",
    "positions:closes_export": "Account",
    "positions:close_orders_export": "Account",
    "positions:sync_runs_export": "Account",
    "instructions:batches_export": "Account",
    "instructions:batch_rows_export": "Account",
    "instructions:instructions_export": "Account",
    "instructions:cancels_export": "Account",
    "instructions:attention_export": "Account",
    "instructions:worksheet_export": "Account",
}
# What each list is asked for so that desk A's row is in it (the batch list opens on "open" batches).
QUERIES = {
    "instructions:batches_export": {"scope": "all"},
    "instructions:batch_rows_export": {"scope": "all"},
}


def read_csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.content[:500]
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def read_xlsx(response) -> list[dict[str, object]]:
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    sheet = openpyxl.load_workbook(io.BytesIO(body), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def on_desk(number: int, maker, expiry: dt.date) -> Account:
    """One row of every list on account ``number``: a failed batch (attention) and an option."""
    rows = book(number, maker)
    account = rows[Account]
    Batch.objects.filter(account=account).update(status=Batch.Status.FAILED)
    make_position(account, option_symbol("ZZXP", expiry), quantity="2")
    return account


@pytest.fixture
def floor():
    """Desk A (account 7001) and desk B (7002); a maker and a checker of desk A, compliance."""
    expiry = timezone.localdate() + dt.timedelta(days=30)
    owner = make_user("maker_b", roles.OPERATIONS)
    a, b = on_desk(7001, owner, expiry), on_desk(7002, owner, expiry)
    desk_a, desk_b = Desk.objects.create(name="A"), Desk.objects.create(name="B")
    desk_a.accounts.add(a)
    desk_b.accounts.add(b)
    maker, checker = make_user("maker_a", roles.OPERATIONS), make_user("checker_a", roles.SUPERVISORS)
    desk_a.members.add(maker, checker)
    return {"a": a, "b": b, "maker": maker, "checker": checker, "expiry": expiry}


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("name", LISTS)
def test_each_list_exports_the_desks_rows_only_in_both_formats(floor, name) -> None:
    client = client_of(floor["checker"])
    column = LISTS[name]
    query = QUERIES.get(name, {})
    as_csv = read_csv(client.get(reverse(name, args=["csv"]), query))
    as_xlsx = read_xlsx(client.get(reverse(name, args=["xlsx"]), query))
    assert as_csv, f"{name}: desk A's row is missing"
    assert {row[column] for row in as_csv} == {"7001"}
    assert [row[column] for row in as_xlsx] == [7001] * len(as_csv)
    compliance = client_of(make_user("compliance_x", roles.COMPLIANCE))
    seen = {row[column] for row in read_csv(compliance.get(reverse(name, args=["csv"]), query))}
    assert {"7001", "7002"} <= seen  # compliance sees every desk, as on the page


def test_the_book_export_follows_the_filters_on_screen(floor) -> None:
    client = client_of(floor["maker"])
    make_position(floor["a"], "MSFT", market_value="-12.50")
    url = reverse("positions:book_export", args=["csv"])
    options = read_csv(client.get(url, {"instrument_type": "OPTION"}))
    assert [row["Symbol"] for row in options] == [option_symbol("ZZXP", floor["expiry"])]
    stocks = read_csv(client.get(url, {"q": "MSFT"}))
    assert [(row["Symbol"], row["Market value"]) for row in stocks] == [("MSFT", "-12.50")]
    by_value = read_csv(client.get(url, {"sort": "MARKET_VALUE", "dir": "asc"}))
    assert by_value[0]["Symbol"] == "MSFT"
    # A negative amount is a number in the spreadsheet, not text behind an apostrophe.
    sheet = read_xlsx(client.get(reverse("positions:book_export", args=["xlsx"]), {"q": "MSFT"}))
    assert sheet[0]["Market value"] == -12.5 and sheet[0]["Quantity"] == 10


def test_the_file_name_says_what_and_when(floor) -> None:
    response = client_of(floor["maker"]).get(
        reverse("positions:book_export", args=["xlsx"]), {"account": 7001}
    )
    disposition = response["Content-Disposition"]
    stamp = timezone.now().astimezone(dt.UTC).strftime("%Y-%m-%dT%H")
    assert f'filename="book-7001-{stamp}' in disposition and disposition.endswith('Z.xlsx"')


@pytest.mark.parametrize(
    "name,params",
    [
        ("positions:book_export", {"expiry_from": "not a date"}),
        ("positions:book_export", {"account": "7002"}),  # desk B's: not a choice for desk A
        ("positions:closes_export", {"status": "nonsense"}),
        ("positions:close_orders_export", {"close": "-1"}),
        ("positions:sync_runs_export", {"account": "x" * 5000}),
        ("instructions:batches_export", {"scope": "everything"}),
        ("instructions:batch_rows_export", {"batch": "99999999999999999999999"}),
        ("instructions:instructions_export", {"q": "A" * 33}),
        ("instructions:cancels_export", {"account": "7002"}),
        ("instructions:worksheet_export", {"day": "2026-02-30"}),
    ],
)
def test_bad_filters_are_a_400_with_a_message(floor, name, params) -> None:
    before = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    response = client_of(floor["maker"]).get(reverse(name, args=["csv"]), params)
    assert response.status_code == 400
    assert b"Nothing was exported" in response.content
    assert not AuditEntry.objects.filter(
        id__gt=before, action="exported", actor_id=floor["maker"].pk
    ).exists()


def test_an_unknown_format_is_no_such_page(floor) -> None:
    assert client_of(floor["maker"]).get("/positions/export.pdf").status_code == 404


def test_formula_cells_are_neutralised_in_both_formats(floor) -> None:
    CloseRequest.objects.filter(account=floor["a"]).update(note='=HYPERLINK("http://evil","x")')
    client = client_of(floor["checker"])
    url = reverse("positions:closes_export", args=["csv"])
    notes = {row["Note"] for row in read_csv(client.get(url))}
    assert '\'=HYPERLINK("http://evil","x")' in notes
    cells = {row["Note"] for row in read_xlsx(client.get(reverse("positions:closes_export", args=["xlsx"])))}
    assert '\'=HYPERLINK("http://evil","x")' in cells


@pytest.mark.parametrize(
    "text,expected",
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("AAPL", "AAPL"),
    ],
)
def test_text_a_spreadsheet_would_run_is_neutralised(text, expected) -> None:
    assert exports.text_of(text) == expected


def test_numbers_are_never_neutralised() -> None:
    assert exports.text_of(Decimal("-12.50")) == "-12.50" and exports.text_of(-3) == "-3"


def test_each_export_is_recorded_on_the_audit_chain(floor) -> None:
    maker = floor["maker"]
    before = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    client = client_of(maker)
    read_csv(client.get(reverse("positions:book_export", args=["csv"]), {"instrument_type": "OPTION"}))
    read_xlsx(client.get(reverse("positions:book_export", args=["xlsx"]), {"instrument_type": "OPTION"}))
    recorded = list(
        AuditEntry.objects.filter(id__gt=before, action="exported", actor_id=maker.pk).order_by("id")
    )
    assert [(entry.subject_type, entry.subject_id) for entry in recorded] == [("export", "book")] * 2
    as_csv, as_xlsx = (entry.after for entry in recorded)
    assert as_csv["filters"]["instrument_type"] == "OPTION" and as_csv["format"] == "csv"
    assert as_csv["rows"] is None  # streamed: not counted before it is sent
    assert (
        as_xlsx["rows"] == 1
        and as_xlsx["file"].startswith("book-")
        and recorded[0].actor_username == "maker_a"
    )


def test_the_audit_export_goes_through_the_same_path(floor) -> None:
    compliance = make_user("compliance_y", roles.COMPLIANCE)
    before = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    rows = read_xlsx(client_of(compliance).get(reverse("audit:export", args=["xlsx"]), {"user": "maker_a"}))
    assert all(row["actor_username"] == "maker_a" for row in rows)
    entry = AuditEntry.objects.get(id__gt=before, action="exported", actor_id=compliance.pk)
    assert entry.after["list"] == "audit" and entry.after["filters"] == {"username": "maker_a"}


@pytest.mark.parametrize("name", LISTS)
def test_a_person_without_the_book_gets_nothing(name) -> None:
    response = client_of(make_user("nobody_x")).get(reverse(name, args=["csv"]))
    assert response.status_code == 403


def test_desk_b_batch_rows_stay_out_even_when_named(floor) -> None:
    """Asking for another desk's batch by id gives an empty file, as its page gives a 404."""
    other = Batch.objects.get(account=floor["b"])
    rows = read_csv(
        client_of(floor["maker"]).get(
            reverse("instructions:batch_rows_export", args=["csv"]), {"batch": other.pk}
        )
    )
    assert rows == []
    assert (
        client_of(floor["maker"]).get(reverse("instructions:batch_detail", args=[other.pk])).status_code
        == 404
    )


def test_list_pages_link_their_export_with_the_query(floor) -> None:
    client = client_of(floor["maker"])
    page = client.get(reverse("positions:list"), {"instrument_type": "OPTION"}).content.decode()
    assert 'href="/positions/export.csv?instrument_type=OPTION"' in page
    assert 'href="/positions/export.xlsx?instrument_type=OPTION"' in page
    for url_name, export in (
        ("positions:closes", "positions:closes_export"),
        ("instructions:batches", "instructions:batches_export"),
        ("instructions:instruction_list", "instructions:instructions_export"),
        ("instructions:attention", "instructions:attention_export"),
        ("instructions:worksheet", "instructions:worksheet_export"),
    ):
        assert reverse(export, args=["csv"]) in client.get(reverse(url_name)).content.decode(), url_name


def test_more_rows_than_a_sheet_holds_is_a_400_pointing_to_csv(floor, monkeypatch) -> None:
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 1)
    response = client_of(floor["checker"]).get(reverse("positions:book_export", args=["xlsx"]))
    assert response.status_code == 400 and b"Export CSV" in response.content
