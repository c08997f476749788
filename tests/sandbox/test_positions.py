"""GET/DELETE positions: paging, sorting, filtering, closes and their effect on available_quantity."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest

GOOG = "c3c4c5c6-d3d4-e3e4-f3f4-f5f6f7f8f9fa"
AAPL = "a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8"
TSLA = "d4d5d6d7-e4e5-f4f5-a4a5-a6a7a8a9aaab"
LEAP = "0195f6d0-a1b2-7c3d-8e4f-5a6b7c8d9e01"
SORT_FIELDS = {
    "SYMBOL": ("symbol", str),
    "INSTRUMENT_TYPE": ("instrument_type", str),
    "QUANTITY": ("quantity", Decimal),
    "MARKET_VALUE": ("market_value", Decimal),
    "POSITION_TYPE": ("position_type", str),
    "UNREALIZED_PNL": ("unrealized_pnl", Decimal),
    "DAILY_UNREALIZED_PNL": ("daily_unrealized_pnl", Decimal),
}


def positions(sandbox, account=0, **params):
    response = sandbox.client.get(f"/v1/accounts/{account}/positions", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def position(sandbox, account, instrument_id):
    [row] = positions(sandbox, account, instrument_ids=instrument_id)["data"]
    return row


def test_paging_round_trip_over_a_large_book(sandbox):
    sandbox.generate(900001, 5000)
    first = positions(sandbox, 900001, page_size=700, sort_by="MARKET_VALUE", sort_direction="DESC")
    meta = first["metadata"]
    assert (meta["page_number"], meta["total_items"], meta["total_pages"]) == (1, 5000, 8)
    assert meta["previous_page_token"] is None
    pages = [first]
    while pages[-1]["metadata"]["next_page_token"]:
        pages.append(positions(sandbox, 900001, page_token=pages[-1]["metadata"]["next_page_token"]))
    assert [p["metadata"]["page_number"] for p in pages] == list(range(1, 9))
    rows = [row for page in pages for row in page["data"]]
    assert len(rows) == 5000
    assert len({row["instrument_id"] for row in rows}) == 5000  # every row exactly once
    values = [Decimal(row["market_value"]) for row in rows]
    assert values == sorted(values, reverse=True)  # the sort holds across pages
    assert len(pages[-1]["data"]) == 5000 - 7 * 700
    # previous_page_token goes back to exactly the page before.
    back = positions(sandbox, 900001, page_token=pages[3]["metadata"]["previous_page_token"])
    assert back["metadata"]["page_number"] == 3
    assert back["data"] == pages[2]["data"]


def test_page_size_default_is_1000(sandbox):
    sandbox.generate(900002, 1500)
    meta = positions(sandbox, 900002)["metadata"]
    assert (meta["total_pages"], meta["total_items"]) == (2, 1500)


def test_token_is_opaque_base64_with_the_query_state(sandbox):
    token = positions(sandbox, 0, page_size=2, sort_by="QUANTITY")["metadata"]["next_page_token"]
    state = json.loads(base64.urlsafe_b64decode(token))
    assert state["b"] == "QUANTITY" and state["p"] == 2 and state["s"] == 2
    # The token carries page_size; a page_size beside it is ignored.
    page = positions(sandbox, 0, page_token=token, page_size=500)
    assert len(page["data"]) == 2 and page["metadata"]["page_number"] == 2


@pytest.mark.parametrize("sort_by", list(SORT_FIELDS))
@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_sorting(sandbox, sort_by, direction):
    field, kind = SORT_FIELDS[sort_by]
    rows = positions(sandbox, 0, sort_by=sort_by, sort_direction=direction)["data"]
    values = [kind(row[field]) for row in rows]
    assert values == sorted(values, reverse=direction == "DESC")


def test_default_order_is_symbol_ascending(sandbox):
    rows = positions(sandbox, 122503)["data"]
    assert [r["symbol"] for r in rows] == sorted(r["symbol"] for r in rows)


def test_filter_by_instrument_ids(sandbox):
    body = positions(sandbox, 0, instrument_ids=f"{GOOG},{TSLA}")
    assert {r["symbol"] for r in body["data"]} == {"GOOG", "TSLA"}
    assert body["metadata"]["total_items"] == 2
    # An alias the seeds use resolves to its canonical instrument.
    [leap] = positions(sandbox, 0, instrument_ids="0195f6d0-a1b2-7c3d-8e4f-5a6b7c8d9e02")["data"]
    assert leap["instrument_id"] == LEAP
    assert positions(sandbox, 0, instrument_ids="00000000-0000-0000-0000-000000000000")["data"] == []


def test_filter_survives_paging(sandbox):
    first = positions(sandbox, 0, instrument_ids=f"{GOOG},{TSLA},{AAPL}", page_size=2)
    second = positions(sandbox, 0, page_token=first["metadata"]["next_page_token"])
    assert second["metadata"]["total_items"] == 3
    assert {r["symbol"] for r in first["data"] + second["data"]} == {"AAPL", "GOOG", "TSLA"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "1001"}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
        ({"sort_by": "PRICE"}, "sort_by"),
        ({"sort_direction": "UP"}, "sort_direction"),
        ({"instrument_ids": "not-a-uuid"}, "instrument_ids"),
        ({"page_token": "%%%not-base64"}, "page_token"),
        ({"page_token": base64.b64encode(b'{"v":1}').decode()}, "page_token"),
    ],
)
def test_bad_parameters_are_400_with_a_message(sandbox, params, message):
    response = sandbox.client.get("/v1/accounts/0/positions", params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["data"] is None and message in body["error"]["message"]


def test_token_from_another_account_or_query_is_refused(sandbox):
    token = positions(sandbox, 0, page_size=2)["metadata"]["next_page_token"]
    other_account = sandbox.client.get("/v1/accounts/19816/positions", params={"page_token": token})
    assert other_account.status_code == 400
    other_sort = sandbox.client.get(
        "/v1/accounts/0/positions", params={"page_token": token, "sort_by": "QUANTITY"}
    )
    assert other_sort.status_code == 400


def test_unknown_account_is_404_and_bad_account_400(sandbox):
    assert sandbox.client.get("/v1/accounts/424242/positions").status_code == 404
    assert sandbox.client.get("/v1/accounts/abc/positions").status_code == 400
    assert sandbox.client.get("/v1/accounts/99999999999999999999999/positions").status_code == 400
    assert sandbox.client.get("/v1/accounts/-1/positions").status_code == 400


# --- closes --------------------------------------------------------------------------------------


def test_close_one_reduces_available_quantity_and_refuses_a_second_close(sandbox):
    [order] = sandbox.client.delete(f"/v1/accounts/0/positions/{GOOG}").json()["data"]
    assert (order["side"], order["quantity"]) == ("SELL", "25")
    after = position(sandbox, 0, GOOG)
    assert (after["quantity"], after["available_quantity"]) == ("25", "0")
    again = sandbox.client.delete(f"/v1/accounts/0/positions/{GOOG}")
    assert again.status_code == 409
    assert "cancel_orders" in again.json()["error"]["message"]


@pytest.mark.parametrize("how", ["query", "body"])
def test_cancel_orders_replaces_the_open_closing_order(sandbox, how):
    sandbox.client.delete(f"/v1/accounts/0/positions/{GOOG}")
    if how == "query":
        response = sandbox.client.delete(f"/v1/accounts/0/positions/{GOOG}", params={"cancel_orders": "true"})
    else:
        response = sandbox.client.request(
            "DELETE", f"/v1/accounts/0/positions/{GOOG}", json={"cancel_orders": True}
        )
    assert response.status_code == 200, response.text
    [order] = response.json()["data"]
    assert order["quantity"] == "25"
    assert position(sandbox, 0, GOOG)["available_quantity"] == "0"


def test_short_positions_are_bought_back(sandbox):
    [order] = sandbox.client.delete(f"/v1/accounts/0/positions/{TSLA}").json()["data"]
    assert (order["side"], order["quantity"], order["underlying_instrument_id"]) == ("BUY", "50", None)
    assert position(sandbox, 0, TSLA)["available_quantity"] == "0"


@pytest.mark.parametrize("spelling", ["AAPL  280121C00195000", "AAPL280121C00195000", "aapl280121c00195000"])
def test_close_by_osi_symbol_padded_or_not(sandbox, spelling):
    response = sandbox.client.delete(f"/v1/accounts/0/positions/{spelling}")
    assert response.status_code == 200, response.text
    [order] = response.json()["data"]
    assert (order["instrument_id"], order["instrument_type"], order["side"]) == (LEAP, "OPTION", "SELL")
    assert order["underlying_instrument_id"] == AAPL
    assert order["quantity"] == "10"


def test_close_by_ticker(sandbox):
    [order] = sandbox.client.delete("/v1/accounts/0/positions/GOOG").json()["data"]
    assert order["instrument_id"] == GOOG


def test_close_all_flattens_every_position_once(sandbox):
    book = positions(sandbox, 48213)["data"]
    orders = sandbox.client.delete("/v1/accounts/48213/positions").json()["data"]
    assert len(orders) == len(book)
    by_id = {o["instrument_id"]: o for o in orders}
    for row in book:
        qty = Decimal(row["quantity"])
        assert by_id[row["instrument_id"]]["side"] == ("SELL" if qty > 0 else "BUY")
        assert Decimal(by_id[row["instrument_id"]]["quantity"]) == abs(qty)
    assert all(r["available_quantity"] == "0" for r in positions(sandbox, 48213)["data"])
    assert sandbox.client.delete("/v1/accounts/48213/positions").json()["data"] == []


def test_close_unknown_instrument_is_404(sandbox):
    assert sandbox.client.delete("/v1/accounts/0/positions/ZZZZ").status_code == 404
    no_position = sandbox.client.delete("/v1/accounts/48213/positions/GOOG")
    assert no_position.status_code == 404
    assert "no position" in no_position.json()["error"]["message"]


def test_bad_cancel_orders_is_400(sandbox):
    response = sandbox.client.delete(f"/v1/accounts/0/positions/{GOOG}", params={"cancel_orders": "maybe"})
    assert response.status_code == 400
    assert sandbox.client.request("DELETE", "/v1/accounts/0/positions", content=b"{oops").status_code == 400
