"""The book's pictures: market value and unrealised P&L of the filtered book, by underlying and by
expiry, in a constant number of queries, drawn with their text alternative."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from positions import queries
from positions.models import Account
from tests.positions.factories import make_position, option_symbol

pytestmark = pytest.mark.django_db(databases=["default", "audit"])


@pytest.fixture
def book(settings):
    settings.MARKET_CLOCK = "system"
    soon = timezone.localdate() + timedelta(days=1)
    account = Account.objects.create(number=11, name="Alpha", snapshot_as_of=timezone.now())
    make_position(account, "AAPL", "100", "15000.00", unrealized_pnl="500.00")
    make_position(account, option_symbol("AAPL", soon, "C", 190), "10", "2000.00", unrealized_pnl="200.00")
    make_position(account, option_symbol("TSLA", soon, "P", 150), "-5", "-900.00", unrealized_pnl="-50.00")
    return {"account": account, "soon": soon}


def charts_of(response) -> dict[str, list[tuple[str, Decimal]]]:
    found = {}
    for chart in response.context["book_chart_list"]:
        found[chart.key] = [(c.label, c.values[0]) for c in chart.categories]
    return found


def test_the_book_by_underlying_and_by_expiry(client, users, book):
    client.force_login(users["operations"])
    response = client.get(reverse("positions:list"), {"account": "11"})
    charts = charts_of(response)
    day = f"{book['soon']:%Y-%m-%d}"
    assert charts["book-market-value-underlying"] == [
        ("AAPL", Decimal("17000.00")),
        ("TSLA", Decimal("-900.00")),
    ]
    assert charts["book-unrealized-pnl-underlying"] == [
        ("AAPL", Decimal("700.00")),
        ("TSLA", Decimal("-50.00")),
    ]
    assert charts["book-market-value-expiry"] == [
        (day, Decimal("1100.00")),
        ("No expiry", Decimal("15000.00")),
    ]
    assert charts["book-unrealized-pnl-expiry"] == [
        (day, Decimal("150.00")),
        ("No expiry", Decimal("500.00")),
    ]
    html = response.content.decode()
    assert html.count('role="img"') == 4
    assert 'aria-label="Market value by underlying"' in html
    assert "AAPL: 17.0k; TSLA: \u2212900.00." in html  # the description says the figures


def test_filters_narrow_the_charts_too(client, users, book):
    client.force_login(users["operations"])
    charts = charts_of(client.get(reverse("positions:list"), {"instrument_type": "OPTION"}))
    assert charts["book-market-value-underlying"] == [
        ("AAPL", Decimal("2000.00")),
        ("TSLA", Decimal("-900.00")),
    ]


def test_beyond_the_largest_the_rest_is_other_and_the_bars_add_up_to_the_total(users, book):
    account = book["account"]
    for n in range(12):
        make_position(account, f"S{n:02d}", "1", f"{n + 1}.00", unrealized_pnl="1.00")
    filters = queries.BookFilters(account_ids=(11,))
    positions = queries.book(filters, users["operations"])
    totals = queries.totals(positions, filters, users["operations"])
    breakdown = queries.book_breakdown(positions, totals, limit=5)
    labels = [s.label for s in breakdown.by_underlying]
    assert labels == ["AAPL", "TSLA", "S11", "S10", "S09", "Other"]
    assert sum(s.market_value for s in breakdown.by_underlying) == totals.market_value
    assert sum(s.unrealized_pnl for s in breakdown.by_underlying) == totals.unrealized_pnl
    with CaptureQueriesContext(connection) as captured:
        queries.book_breakdown(positions, totals, limit=5)
    assert len(captured) == 2


def test_the_page_costs_the_same_queries_however_many_underlyings(client, users, book):
    client.force_login(users["operations"])
    url = reverse("positions:list")
    client.get(url)

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url, {"account": "11"}).status_code == 200
        return len(captured)

    before = count()
    for n in range(40):
        make_position(book["account"], f"X{n:02d}", "1", "1.00")
    Account.objects.filter(pk=book["account"].pk).update(snapshot_as_of=timezone.now())  # as a sync does
    assert count() == before


def test_a_snapshot_is_summed_once_and_a_new_one_again(client, users, book):
    client.force_login(users["operations"])
    url = reverse("positions:list")
    first = charts_of(client.get(url, {"account": "11"}))
    with CaptureQueriesContext(connection) as again:
        assert charts_of(client.get(url, {"account": "11", "sort": "QUANTITY"})) == first
    assert not [q for q in again.captured_queries if "GROUP BY" in q["sql"]]
    make_position(book["account"], "NVDA", "10", "1000.00")
    Account.objects.filter(pk=book["account"].pk).update(snapshot_as_of=timezone.now())
    later = charts_of(client.get(url, {"account": "11"}))
    assert ("NVDA", Decimal("1000.00")) in later["book-market-value-underlying"]
