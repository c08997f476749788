"""Every example request in the seeds, sent verbatim, answers with the documented shape."""

from __future__ import annotations

from tests.sandbox.shapes import (
    INSTRUCTION_OPTIONAL,
    INSTRUCTION_REQUIRED,
    ORDER_OPTIONAL,
    ORDER_REQUIRED,
    POSITION_OPTIONAL,
    POSITION_REQUIRED,
    assert_envelope,
    assert_shape,
)

SEED_SUBMIT_BODY = (
    '[ { "instruction_type": "EXERCISE", "instrument_id": "0195f6d0-a1b2-7c3d-8e4f-5a6b7c8d9e02", '
    '"quantity": "1", "instruction_id": "ui-20260424-001" } ]'
)
AAPL_LEAP = "0195f6d0-a1b2-7c3d-8e4f-5a6b7c8d9e01"


def test_get_positions_account_0(sandbox):
    response = sandbox.client.get("/v1/accounts/0/positions")
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body)
    meta = body["metadata"]
    assert meta["page_number"] == 1 and meta["total_items"] == len(body["data"]) and meta["total_pages"] == 1
    assert meta["next_page_token"] is None and meta["previous_page_token"] is None
    for position in body["data"]:
        assert_shape(position, POSITION_REQUIRED, POSITION_OPTIONAL)
        assert position["account_id"] == 0
    ids = {p["instrument_id"] for p in body["data"]}
    # The instruments of the seeds' example response are in the book.
    assert {
        "a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8",
        "d4d5d6d7-e4e5-f4f5-a4a5-a6a7a8a9aaab",
        "e5e6e7e8-f5f6-a5a6-b5b6-b7b8b9babcbe",
        "c3c4c5c6-d3d4-e3e4-f3f4-f5f6f7f8f9fa",
    } <= ids


def test_seed_example_rows_carry_the_seed_values(sandbox):
    body = sandbox.client.get("/v1/accounts/19816/positions").json()
    rows = {p["symbol"]: p for p in body["data"]}
    aapl = rows["AAPL"]
    assert (aapl["quantity"], aapl["avg_price"], aapl["closing_price"], aapl["instrument_price"]) == (
        "100",
        "145.00",
        "150.50",
        "151.00",
    )
    assert (aapl["cost_basis"], aapl["market_value"], aapl["unrealized_pnl"]) == (
        "14500.00",
        "15050.00",
        "550.00",
    )
    tsla = rows["TSLA"]
    assert (tsla["quantity"], tsla["position_type"], tsla["market_value"], tsla["cost_basis"]) == (
        "-50",
        "SHORT",
        "-9000.00",
        "-9000.00",
    )
    call = rows["AAPL250117C00190000"]
    assert call["instrument_id"] == "e5e6e7e8-f5f6-a5a6-b5b6-b7b8b9babcbe"
    assert call["position_type"] == "LONG_CALL"
    assert call["underlying_instrument_id"] == "a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8"
    assert (call["market_value"], call["cost_basis"], call["unrealized_pnl"]) == (
        "2700.00",
        "2500.00",
        "200.00",
    )


def test_close_positions_account_0(sandbox):
    response = sandbox.client.delete("/v1/accounts/0/positions")
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body)
    assert body["data"]
    for order in body["data"]:
        assert_shape(order, ORDER_REQUIRED, ORDER_OPTIONAL)
        assert order["filled_quantity"] == "0" and order["leaves_quantity"] == order["quantity"]
    goog = next(o for o in body["data"] if o["symbol"] == "GOOG")
    assert (goog["side"], goog["quantity"], goog["instrument_type"], goog["venue"]) == (
        "SELL",
        "25",
        "COMMON_STOCK",
        "XNMS",
    )


def test_close_position_account_0_seed_instrument(sandbox):
    response = sandbox.client.delete("/v1/accounts/0/positions/182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e")
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body)
    [order] = body["data"]
    assert_shape(order, ORDER_REQUIRED, ORDER_OPTIONAL)
    # As in the seeds' answer: the GOOG position, 25 shares sold at market.
    assert (order["instrument_id"], order["symbol"], order["side"], order["quantity"]) == (
        "c3c4c5c6-d3d4-e3e4-f3f4-f5f6f7f8f9fa",
        "GOOG",
        "SELL",
        "25",
    )
    assert (order["order_type"], order["time_in_force"], order["status"]) == ("MARKET", "DAY", "PENDING_NEW")
    assert order["created_at"] == "2026-04-24T14:30:00.000000000Z"


def test_list_position_instructions(sandbox):
    for account in (0, 122503):
        response = sandbox.client.get(f"/v1/accounts/{account}/positions/instructions")
        assert response.status_code == 200
        body = response.json()
        assert_envelope(body)
        assert body["data"]
        for instruction in body["data"]:
            assert_shape(instruction, INSTRUCTION_REQUIRED, INSTRUCTION_OPTIONAL)
            assert instruction["account_id"] == account


def test_submit_position_instructions_http_example(sandbox):
    response = sandbox.client.post(
        "/v1/accounts/122503/positions/instructions",
        content=SEED_SUBMIT_BODY,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert_envelope(body)
    [row] = body["data"]
    assert_shape(row, INSTRUCTION_REQUIRED, INSTRUCTION_OPTIONAL)
    assert (row["account_id"], row["instruction_id"], row["instrument_id"], row["status"]) == (
        122503,
        "ui-20260424-001",
        AAPL_LEAP,
        "SENT",
    )
    assert (row["symbol"], row["quantity"], row["created_at"]) == (
        "AAPL  280121C00195000",
        "1",
        "2026-04-24T14:30:00Z",
    )


def test_submit_position_instructions_cli_example(sandbox):
    # --instruction "{instruction_type: EXERCISE, instrument_id: ...e02, quantity: '1'}" on account 0
    response = sandbox.client.post(
        "/v1/accounts/0/positions/instructions",
        json=[
            {
                "instruction_type": "EXERCISE",
                "instrument_id": "0195f6d0-a1b2-7c3d-8e4f-5a6b7c8d9e02",
                "quantity": "1",
            }
        ],
    )
    assert response.status_code == 200, response.text
    [row] = response.json()["data"]
    assert_shape(row, INSTRUCTION_REQUIRED, INSTRUCTION_OPTIONAL)
    assert row["instruction_id"]  # server-assigned when omitted


def test_cancel_position_instruction_example(sandbox):
    response = sandbox.client.delete(
        "/v1/accounts/0/positions/instructions/182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert_envelope(body)
    assert_shape(body["data"], INSTRUCTION_REQUIRED, INSTRUCTION_OPTIONAL)
    assert body["data"]["status"] == "CANCEL_REQUESTED"
    assert body["data"]["id"] == "182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e"
