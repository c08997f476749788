"""Instruction batches (200/207/409/400/404/503), row rules, lifecycle and cancels."""

from __future__ import annotations

import pytest

BUSINESS_DATE = "260424"  # the fixture's frozen business date, 2026-04-24, in OSI form
AAPL = "a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8"
LEAP = "0195f6d0-a1b2-7c3d-8e4f-5a6b7c8d9e01"
EXPIRED_CALL = "e5e6e7e8-f5f6-a5a6-b5b6-b7b8b9babcbe"


def contract(sandbox, account: int, root: str, position_type: str, today: bool = True) -> dict:
    """The account's option position on ``root`` of that type, expiring today (or not)."""
    rows = sandbox.client.get(f"/v1/accounts/{account}/positions").json()["data"]
    matches = [
        r
        for r in rows
        if r["instrument_type"] == "OPTION"
        and r["symbol"].startswith(root)
        and r["position_type"] == position_type
        and (BUSINESS_DATE in r["symbol"]) == today
    ]
    assert matches, f"no {position_type} on {root} in account {account}"
    return matches[0]


def row(
    instrument_id: str, quantity: str = "1", kind: str = "EXERCISE", instruction_id: str | None = None
) -> dict:
    body = {"instruction_type": kind, "instrument_id": instrument_id, "quantity": quantity}
    if instruction_id is not None:
        body["instruction_id"] = instruction_id
    return body


def submit(sandbox, rows, account: int = 122503):
    return sandbox.client.post(f"/v1/accounts/{account}/positions/instructions", json=rows)


def listed(sandbox, account: int = 122503, **params) -> list[dict]:
    response = sandbox.client.get(f"/v1/accounts/{account}/positions/instructions", params=params)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_all_rows_accepted_is_200_and_sent(sandbox):
    msft_put = contract(sandbox, 122503, "MSFT", "LONG_PUT")
    nvda_put = contract(sandbox, 122503, "NVDA", "LONG_PUT")
    response = submit(
        sandbox,
        [
            row(msft_put["instrument_id"], "4", instruction_id="b-1"),
            row(nvda_put["instrument_id"], "15", "DO_NOT_EXERCISE"),
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["error"] is None
    assert [r["status"] for r in body["data"]] == ["SENT", "SENT"]
    assert body["data"][0]["instruction_id"] == "b-1"
    assert body["data"][1]["instruction_id"] == body["data"][1]["id"]  # server-assigned fallback
    assert {r["instruction_id"] for r in listed(sandbox)} >= {"b-1", body["data"][1]["instruction_id"]}


def test_partial_success_is_207_with_rejected_rows_and_a_top_level_error(sandbox):
    msft_put = contract(sandbox, 122503, "MSFT", "LONG_PUT")
    month_put = contract(sandbox, 122503, "AAPL", "LONG_PUT", today=False)
    before = len(listed(sandbox))
    response = submit(
        sandbox,
        [
            row(msft_put["instrument_id"], "1", instruction_id="ok-1"),
            row(month_put["instrument_id"], "1", "DO_NOT_EXERCISE"),
        ],
    )
    assert response.status_code == 207, response.text
    body = response.json()
    ok, rejected = body["data"]
    assert ok["status"] == "SENT" and ok["rejection_reason"] is None
    assert rejected["status"] in {"ENGINE_REJECTED", "REJECTED"}
    assert "expiration date" in rejected["rejection_reason"]
    assert body["error"]["code"] == 400 and "1 of 2" in body["error"]["message"]
    assert body["error"]["details"][0]["index"] == 1
    assert len(listed(sandbox)) == before + 1  # only the accepted row is live


def test_all_duplicates_is_409_without_data(sandbox):
    msft_put = contract(sandbox, 122503, "MSFT", "LONG_PUT")
    assert submit(sandbox, [row(msft_put["instrument_id"], instruction_id="dup-1")]).status_code == 200
    response = submit(sandbox, [row(msft_put["instrument_id"], instruction_id="dup-1")])
    assert response.status_code == 409
    body = response.json()
    assert body["data"] is None and "duplicate" in body["error"]["message"]


def test_duplicate_within_one_batch(sandbox):
    msft_put = contract(sandbox, 122503, "MSFT", "LONG_PUT")
    response = submit(
        sandbox,
        [
            row(msft_put["instrument_id"], instruction_id="twice"),
            row(msft_put["instrument_id"], instruction_id="twice"),
        ],
    )
    assert response.status_code == 207
    assert [r["status"] for r in response.json()["data"]] == ["SENT", "ENGINE_REJECTED"]
    assert response.json()["error"]["code"] == 409


def test_dne_on_a_non_expiry_day_is_400_and_nothing_is_stored(sandbox):
    month_put = contract(sandbox, 122503, "AAPL", "LONG_PUT", today=False)
    before = listed(sandbox)
    for kind in ("DO_NOT_EXERCISE", "CONTRARY_EXERCISE"):
        response = submit(sandbox, [row(month_put["instrument_id"], "1", kind)])
        assert response.status_code == 400
        assert response.json()["data"] is None
    assert listed(sandbox) == before


def test_dne_and_cea_accepted_on_expiration_day(sandbox):
    msft_put = contract(sandbox, 122503, "MSFT", "LONG_PUT")
    nvda_put = contract(sandbox, 122503, "NVDA", "LONG_PUT")
    response = submit(
        sandbox,
        [
            row(msft_put["instrument_id"], "2", "CONTRARY_EXERCISE"),
            row(nvda_put["instrument_id"], "3", "DO_NOT_EXERCISE"),
        ],
    )
    assert response.status_code == 200, response.text


def test_unknown_instrument_short_circuits_the_batch_with_404(sandbox):
    msft_put = contract(sandbox, 122503, "MSFT", "LONG_PUT")
    before = listed(sandbox)
    response = submit(
        sandbox,
        [row(msft_put["instrument_id"], instruction_id="pre-1"), row("00000000-0000-0000-0000-00000000dead")],
    )
    assert response.status_code == 404
    assert response.json()["data"] is None
    assert listed(sandbox) == before  # the valid row was not stored either
    # ... so the same instruction_id is still free.
    assert submit(sandbox, [row(msft_put["instrument_id"], instruction_id="pre-1")]).status_code == 200


@pytest.mark.parametrize(
    "quantity", ["abc", "1.5", "-1", "0", "", None, True, 2.5, "1e999999", "NaN", 10**12]
)
def test_unencodable_quantity_short_circuits_with_400(sandbox, quantity):
    msft_put = contract(sandbox, 122503, "MSFT", "LONG_PUT")
    before = listed(sandbox)
    bad = {"instruction_type": "EXERCISE", "instrument_id": msft_put["instrument_id"], "quantity": quantity}
    response = submit(sandbox, [row(msft_put["instrument_id"]), bad])
    assert response.status_code == 400
    assert "quantity" in response.json()["error"]["message"]
    assert listed(sandbox) == before


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"instruction_type": "EXERCISE"}',
        b"[]",
        b"[1, 2]",
        b'[{"instruction_type": "SELL"}]',
        b"",
    ],
)
def test_malformed_batches_are_400(sandbox, content):
    response = sandbox.client.post(
        "/v1/accounts/122503/positions/instructions",
        content=content,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["data"] is None


def test_clearing_outage_is_503_without_data(sandbox):
    msft_put = contract(sandbox, 122503, "MSFT", "LONG_PUT")
    before = listed(sandbox)
    sandbox.set_faults({"submit_instructions": {"outage": True}})
    response = submit(sandbox, [row(msft_put["instrument_id"])])
    assert response.status_code == 503
    assert response.json()["data"] is None and response.json()["error"]["code"] == 503
    sandbox.clear_faults()
    assert listed(sandbox) == before


def test_quantity_above_available_counts_instructions_in_flight(sandbox):
    # 12 held, 4 already in flight from the demo book (demo-ex-0002).
    itm_call = contract(sandbox, 122503, "AAPL", "LONG_CALL")
    assert itm_call["quantity"] == "12"
    too_many = submit(sandbox, [row(itm_call["instrument_id"], "9")])
    assert too_many.status_code == 400
    assert "exceeds the 8 contracts available" in too_many.json()["error"]["message"]
    # Within one batch, earlier rows consume contracts too.
    response = submit(sandbox, [row(itm_call["instrument_id"], "5"), row(itm_call["instrument_id"], "4")])
    assert response.status_code == 207
    assert [r["status"] for r in response.json()["data"]] == ["SENT", "ENGINE_REJECTED"]


def test_closing_orders_reduce_what_can_be_instructed(sandbox):
    msft_put = contract(sandbox, 122503, "MSFT", "LONG_PUT")
    sandbox.client.delete(f"/v1/accounts/122503/positions/{msft_put['instrument_id']}")
    assert submit(sandbox, [row(msft_put["instrument_id"])]).status_code == 400


def test_rows_on_non_options_short_and_expired_contracts_are_rejected(sandbox):
    short_call = contract(sandbox, 122503, "MSFT", "SHORT_CALL")
    cases = {
        AAPL: "options only",
        short_call["instrument_id"]: "no long position",
        EXPIRED_CALL: "expired",
        LEAP: "no long position",  # account 48213 holds no AAPL LEAP
    }
    for instrument_id, reason in cases.items():
        account = 48213 if instrument_id == LEAP else 0 if instrument_id == EXPIRED_CALL else 122503
        response = submit(sandbox, [row(instrument_id)], account=account)
        assert response.status_code == 400, response.text
        assert reason in response.json()["error"]["message"]


def test_exercise_after_the_cutoff_is_rejected(sandbox):
    msft_put = contract(sandbox, 122503, "MSFT", "LONG_PUT")
    sandbox.set_clock(market_time="17:29")
    assert submit(sandbox, [row(msft_put["instrument_id"])]).status_code == 200
    sandbox.set_clock(market_time="17:30")
    late = submit(sandbox, [row(msft_put["instrument_id"])])
    assert late.status_code == 400 and "17:30 ET cutoff" in late.json()["error"]["message"]
    # The cutoff is configurable (a firm's earlier cutoff).
    sandbox.set_behaviour(cutoff="16:00")
    sandbox.set_clock(market_time="16:15")
    assert "16:00 ET cutoff" in submit(sandbox, [row(msft_put["instrument_id"])]).json()["error"]["message"]


def test_asynchronous_acceptance_follows_the_clock(sandbox):
    sandbox.set_behaviour(accept_delay_seconds=30)
    msft_put = contract(sandbox, 122503, "MSFT", "LONG_PUT")
    [sent] = submit(sandbox, [row(msft_put["instrument_id"], "3", instruction_id="async-1")]).json()["data"]
    sandbox.advance(29)
    [still] = listed(sandbox, instrument_id=msft_put["instrument_id"])
    assert still["status"] == "SENT" and still["accepted_quantity"] is None
    sandbox.advance(1)
    [done] = listed(sandbox, instrument_id=msft_put["instrument_id"])
    assert (done["status"], done["accepted_quantity"]) == ("ACCEPTED", "3")
    assert done["created_at"] == sent["created_at"] == "2026-04-24T14:30:00Z"
    assert done["updated_at"] == "2026-04-24T14:30:30Z"


@pytest.mark.parametrize(
    ("settings", "final"),
    [
        ({"outcome": "REJECTED", "rejection_reason": "Position not found at OCC"}, "REJECTED"),
        ({"outcome": "RANDOM", "reject_rate": 1}, "REJECTED"),
        ({"outcome": "RANDOM", "reject_rate": 0}, "ACCEPTED"),
    ],
)
def test_asynchronous_outcome_is_controllable(sandbox, settings, final):
    sandbox.set_behaviour(**settings)
    msft_put = contract(sandbox, 122503, "MSFT", "LONG_PUT")
    submit(sandbox, [row(msft_put["instrument_id"])])
    sandbox.advance(5)
    [done] = listed(sandbox, instrument_id=msft_put["instrument_id"])
    assert done["status"] == final
    if final == "REJECTED":
        assert done["rejection_reason"] and done["accepted_quantity"] is None


def test_list_filters_by_id_or_osi_symbol(sandbox):
    by_id = listed(sandbox, 0, instrument_id=LEAP)
    assert [r["instruction_id"] for r in by_id] == ["demo-ex-0001"]
    for spelling in ("AAPL  280121C00195000", "AAPL280121C00195000", "0195f6d0-a1b2-7c3d-8e4f-5a6b7c8d9e02"):
        assert listed(sandbox, 0, instrument_id=spelling) == by_id
    assert listed(sandbox, 0, instrument_id=AAPL) == []
    assert (
        sandbox.client.get(
            "/v1/accounts/0/positions/instructions", params={"instrument_id": "NOPE"}
        ).status_code
        == 404
    )


# --- cancels -------------------------------------------------------------------------------------

SEEDED = "182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e"


def cancel(sandbox, instruction: str = SEEDED, account: int = 0):
    return sandbox.client.delete(f"/v1/accounts/{account}/positions/instructions/{instruction}")


def status_of(sandbox, instruction: str = SEEDED, account: int = 0) -> dict:
    return next(r for r in listed(sandbox, account) if r["id"] == instruction)


def test_cancel_lifecycle_to_cancelled(sandbox):
    sandbox.set_behaviour(cancel_delay_seconds=10)
    first = cancel(sandbox)
    assert first.status_code == 200 and first.json()["data"]["status"] == "CANCEL_REQUESTED"
    assert status_of(sandbox)["status"] == "CANCEL_REQUESTED"
    assert cancel(sandbox).json()["data"]["status"] == "CANCEL_REQUESTED"  # a retry is harmless
    sandbox.advance(10)
    final = status_of(sandbox)
    assert final["status"] == "CANCELLED" and final["updated_at"] == "2026-04-24T14:30:10Z"
    again = cancel(sandbox)
    assert again.status_code == 409 and "CANCELLED" in again.json()["error"]["message"]


def test_cancel_lifecycle_to_cancel_failed(sandbox):
    sandbox.set_behaviour(cancel_outcome="CANCEL_FAILED", cancel_failure_reason="Already processed by OCC")
    assert cancel(sandbox).json()["data"]["status"] == "CANCEL_REQUESTED"
    sandbox.advance(5)
    final = status_of(sandbox)
    assert (final["status"], final["rejection_reason"]) == ("CANCEL_FAILED", "Already processed by OCC")
    assert cancel(sandbox).status_code == 409


def test_cancel_after_the_cutoff_on_expiration_day_fails(sandbox):
    sandbox.set_behaviour(accept_delay_seconds=86_400)  # still SENT (not yet final) at the cutoff
    msft_put = contract(sandbox, 122503, "MSFT", "LONG_PUT")
    [sent] = submit(sandbox, [row(msft_put["instrument_id"])]).json()["data"]
    sandbox.set_clock(market_time="17:45")
    assert cancel(sandbox, sent["id"], 122503).json()["data"]["status"] == "CANCEL_REQUESTED"
    sandbox.advance(5)
    final = status_of(sandbox, sent["id"], 122503)
    assert final["status"] == "CANCEL_FAILED" and "cutoff" in final["rejection_reason"]


def test_cancelled_instruction_frees_its_contracts(sandbox):
    msft_put = contract(sandbox, 122503, "MSFT", "LONG_PUT")
    [sent] = submit(sandbox, [row(msft_put["instrument_id"], "4")]).json()["data"]
    assert submit(sandbox, [row(msft_put["instrument_id"], "1")]).status_code == 400
    cancel(sandbox, sent["id"], 122503)
    sandbox.advance(5)
    assert submit(sandbox, [row(msft_put["instrument_id"], "4")]).status_code == 200


def test_cancel_unknown_is_404(sandbox):
    assert cancel(sandbox, "00000000-0000-0000-0000-000000000000").status_code == 404
    assert cancel(sandbox, SEEDED, account=122503).status_code == 404  # another account's instruction


def test_an_accepted_instruction_can_no_longer_be_cancelled(sandbox):
    body = [
        {
            "instruction_type": "EXERCISE",
            "instrument_id": "0195f6d0-a1b2-7c3d-8e4f-5a6b7c8d9e01",
            "quantity": "1",
            "instruction_id": "accepted-then-cancel",
        }
    ]
    sent = sandbox.client.post("/v1/accounts/122503/positions/instructions", json=body).json()["data"][0]
    sandbox.advance(60)
    response = sandbox.client.delete(f"/v1/accounts/122503/positions/instructions/{sent['id']}")
    assert response.status_code == 409
    assert "ACCEPTED" in response.json()["error"]["message"]
