"""The positions pages: filters, totals, sorting, freshness, sync endpoints, constant query count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backoffice import clock
from positions.models import Account, SyncRun
from tests.positions.factories import make_position, option_symbol

pytestmark = pytest.mark.django_db(databases=["default", "audit"])


@pytest.fixture
def book(settings):
    settings.MARKET_CLOCK = "system"
    today = timezone.localdate()
    first = Account.objects.create(number=11, name="Alpha", snapshot_as_of=timezone.now())
    second = Account.objects.create(number=22, name="Beta", snapshot_as_of=timezone.now())
    soon, later = today + timedelta(days=1), today + timedelta(days=30)
    make_position(first, "AAPL", "100", "15050.00", unrealized_pnl="550.00")
    make_position(first, option_symbol("AAPL", soon, "C", 190), "10", "2700.00", unrealized_pnl="200.00")
    make_position(first, option_symbol("MSFT1", later, "P", 400), "-3", "-900.00", unrealized_pnl="-50.00")
    make_position(second, "TSLA", "-50", "-9000.00", unrealized_pnl="75.00")
    make_position(second, option_symbol("TSLA", soon, "P", 150), "5", "500.00", unrealized_pnl="-20.00")
    return {"first": first, "second": second, "soon": soon, "later": later}


def symbols(response) -> list[str]:
    return [p.symbol for p in response.context["page"].object_list]


def get(client, **params):
    return client.get(reverse("positions:list"), params)


def test_all_accounts_with_totals(client, users, book):
    client.force_login(users["operations"])
    response = get(client)
    assert response.status_code == 200
    totals = response.context["totals"]
    assert totals.count == 5
    assert totals.market_value == Decimal("8350.00")
    assert totals.unrealized_pnl == Decimal("755.00")
    assert b"8,350.00" in response.content


def test_filters_narrow_the_book_and_its_totals(client, users, book):
    client.force_login(users["operations"])
    assert symbols(get(client, account="22")) == sorted(
        ["TSLA", option_symbol("TSLA", book["soon"], "P", 150)]
    )
    options = get(client, instrument_type="OPTION")
    assert options.context["totals"].count == 3
    assert options.context["totals"].market_value == Decimal("2300.00")
    assert len(symbols(get(client, position_type="SHORT"))) == 2
    assert set(symbols(get(client, q="aapl"))) == {"AAPL", option_symbol("AAPL", book["soon"], "C", 190)}
    assert symbols(get(client, q="MSFT1")) == [option_symbol("MSFT1", book["later"], "P", 400)]
    ranged = get(client, expiry_from=book["later"].isoformat(), expiry_to=book["later"].isoformat())
    assert symbols(ranged) == [option_symbol("MSFT1", book["later"], "P", 400)]
    nearest = get(client, next_expiration="on")
    assert set(symbols(nearest)) == {
        option_symbol("AAPL", book["soon"], "C", 190),
        option_symbol("TSLA", book["soon"], "P", 150),
    }


def test_sorting_on_upstream_fields_and_expiry(client, users, book):
    client.force_login(users["operations"])
    by_value = get(client, sort="MARKET_VALUE", dir="desc")
    values = [p.market_value for p in by_value.context["page"].object_list]
    assert values == sorted(values, reverse=True)
    by_expiry = symbols(get(client, sort="EXPIRY"))
    assert by_expiry[-2:] == sorted(["AAPL", "TSLA"])  # stocks have no expiry: last
    quantities = [p.quantity for p in get(client, sort="QUANTITY").context["page"].object_list]
    assert quantities == sorted(quantities)


def test_bad_filter_input_is_reported_not_a_500(client, users, book):
    client.force_login(users["operations"])
    response = get(client, expiry_from="yesterday", account="999999999", page="banana", page_size="7")
    assert response.status_code == 200
    assert b"Enter a valid date" in response.content
    reversed_range = get(client, expiry_from="2030-01-02", expiry_to="2030-01-01")
    assert b"before its start" in reversed_range.content


def test_query_count_does_not_grow_with_the_page_size(client, users, book):
    account = book["first"]
    for n in range(300):
        make_position(account, f"S{n:04d}", instrument_id=f"bulk-{n}")
    client.force_login(users["operations"])
    get(client)  # warm the session and permission caches alike for both measurements

    def queries(page_size: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            response = get(client, page_size=page_size)
        assert len(response.context["page"].object_list) == page_size
        return len(captured)

    assert queries(25) == queries(250)


def test_freshness_states(client, users, book, settings):
    client.force_login(users["operations"])
    response = get(client, account="11")
    assert response.context["freshness"].warning == ""
    assert b"Book as of" in response.content
    Account.objects.filter(number=11).update(snapshot_as_of=timezone.now() - timedelta(hours=3))
    assert "stale" in get(client, account="11").context["freshness"].warning
    SyncRun.objects.create(account=book["first"], status="failed", finished_at=timezone.now(), error="boom")
    warning = get(client, account="11").context["freshness"].warning
    assert "last sync failed" in warning and "previous snapshot" in warning
    Account.objects.create(number=33)
    assert "Never synced: account 33" in get(client, account="33").context["freshness"].warning


def test_sync_now_answers_json_and_folds_repeated_clicks(client, users, book):
    client.force_login(users["operations"])
    first = client.post(reverse("positions:sync"), {"account": "11"})
    assert first.status_code == 202
    (run,) = first.json()["runs"]
    assert run["account_id"] == 11 and run["status"] == "queued"
    again = client.post(reverse("positions:sync"), {"account": "11"}).json()["runs"][0]
    assert again["id"] == run["id"]
    status = client.get(reverse("positions:sync_status"), {"runs": str(run["id"])}).json()
    assert status["runs"][0]["id"] == run["id"]
    bad = client.post(reverse("positions:sync"), {"account": "nope"})
    assert bad.status_code == 400 and "Unknown account" in bad.json()["error"]["message"]
    assert client.get(reverse("positions:sync_status"), {"runs": "x"}).status_code == 400


def test_position_detail_shows_every_field_and_the_decoded_contract(client, users, book):
    client.force_login(users["compliance"])
    option = book["first"].positions.get(symbol=option_symbol("AAPL", book["soon"], "C", 190))
    html = client.get(reverse("positions:detail", args=[option.pk])).content.decode()
    for name in (
        "instrument_id",
        "available_quantity",
        "market_value",
        "closing_price",
        "underlying_instrument_id",
    ):
        assert f'<th scope="row">{name}</th>' in html
    assert 'id="option-contract"' in html and "Call" in html and "190" in html
    assert 'id="close-position"' not in html, "compliance cannot request closes"
    client.force_login(users["operations"])
    assert 'id="close-position"' in client.get(reverse("positions:detail", args=[option.pk])).content.decode()


def test_dates_show_in_new_york_time(client, users, book):
    Account.objects.filter(number=11).update(snapshot_as_of=datetime(2026, 1, 5, 15, 0, tzinfo=UTC))
    client.force_login(users["operations"])
    assert b"10:00:00" in get(client, account="11").content  # 15:00 UTC is 10:00 in New York in January


def test_an_expired_contract_is_marked_and_cannot_be_selected(client, users, book):
    """A contract past its expiry takes no more instructions: the book says so and offers no box."""
    expired = make_position(
        book["first"], option_symbol("AAPL", clock.business_date() - timedelta(days=1), "C", 180), "4", "0.00"
    )
    client.force_login(users["operations"])
    page = get(client, account="11").content.decode()
    row = page[page.index(f'data-instrument="{expired.instrument_id}"') :].split("</tr>", 1)[0]
    assert "expired" in row
    assert 'type="checkbox"' not in row
    live = page[
        page.index(
            f'data-instrument="{book["first"].number}-{option_symbol("AAPL", book["soon"], "C", 190)}"'
        ) :
    ]
    assert 'type="checkbox"' in live.split("</tr>", 1)[0]
