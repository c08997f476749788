"""The Clear Street client against the sandbox over real HTTP: every endpoint, every error class,
and the audit row each call leaves (with its request_id, and never the API key)."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest

from backoffice.audit.models import AuditEntry
from backoffice.clearstreet import errors
from backoffice.clearstreet.client import ClearStreetClient
from backoffice.clearstreet.types import InstructionRequest

pytestmark = pytest.mark.django_db(databases=["default", "audit"])

ACCOUNT = 122503


@pytest.fixture
def client(sandbox):
    with ClearStreetClient(sandbox.base_url, sandbox.api_key, timeout=5, sleep=lambda seconds: None) as c:
        yield c


def rows_for(request_id: str | None = None, **filters) -> list[AuditEntry]:
    if request_id is not None:
        filters["request_id"] = request_id
    return list(AuditEntry.objects.filter(**filters).order_by("id"))


def assert_no_secret(entry: AuditEntry, key: str) -> None:
    stored = json.dumps(
        [entry.request_headers, entry.request_body, entry.response_body, entry.response_text, entry.query],
        default=str,
    )
    assert key not in stored
    assert "[REDACTED]" in entry.request_headers["Authorization"]


def exercisable_option(
    client: ClearStreetClient, account_id: int = ACCOUNT, business_date: str = "2026-04-24"
):
    """A long option with free contracts that does not expire on the sandbox's business date."""
    yymmdd = business_date[2:].replace("-", "")
    for position in client.get_positions(account_id).positions:
        if (
            position.instrument_type == "OPTION"
            and position.quantity > 0
            and position.available_quantity >= 1
            and position.symbol.replace(" ", "")[-15:-9] != yymmdd
        ):
            return position
    raise AssertionError("the demo book has no long option to exercise")


def exercise(
    position, key: str | None = None, quantity: int = 1, kind: str = "EXERCISE"
) -> InstructionRequest:
    return InstructionRequest(kind, position.instrument_id, quantity, key or f"test-{uuid.uuid4()}")


# --- success on each endpoint -------------------------------------------------------------------


def test_get_positions_returns_typed_rows_and_leaves_one_audit_row(client, sandbox):
    page = client.get_positions(ACCOUNT, page_size=5, sort_by="SYMBOL", sort_direction="ASC")
    assert page.request_id and len(page.positions) == 5 and not page.problems
    first = page.positions[0]
    assert isinstance(first.quantity, Decimal) and isinstance(first.market_value, Decimal)
    assert [p.symbol for p in page.positions] == sorted(p.symbol for p in page.positions)
    (entry,) = rows_for(page.request_id)
    assert (entry.method, entry.status_code, entry.attempt) == ("GET", 200, 1)
    assert entry.path == f"/v1/accounts/{ACCOUNT}/positions"
    assert entry.query == {"page_size": 5, "sort_by": "SYMBOL", "sort_direction": "ASC"}
    assert entry.account_id == ACCOUNT and entry.error_class is None
    assert entry.response_body["metadata"]["request_id"] == page.request_id
    assert_no_secret(entry, sandbox.api_key)


def test_pages_follow_next_page_token_to_the_end(client):
    pages = list(client.iter_position_pages(ACCOUNT, page_size=3))
    assert len(pages) == pages[0].total_pages >= 2
    seen = [p.instrument_id for page in pages for p in page.positions]
    assert len(seen) == len(set(seen)) == pages[0].total_items
    for page in pages:
        assert len(rows_for(page.request_id)) == 1


def test_close_position_returns_orders(client, sandbox):
    position = exercisable_option(client)
    result = client.close_position(ACCOUNT, position.instrument_id, cancel_orders=True)
    (order,) = result.orders
    assert order.instrument_id == position.instrument_id and order.side == "SELL"
    assert order.quantity == position.quantity and order.status == "PENDING_NEW"
    assert order.created_at is not None and order.created_at.tzinfo is not None
    (entry,) = rows_for(result.request_id)
    assert entry.method == "DELETE" and entry.request_body == {"cancel_orders": True}
    assert_no_secret(entry, sandbox.api_key)


def test_close_position_by_padded_osi_symbol(client):
    option = exercisable_option(client)
    result = client.close_position(ACCOUNT, option.symbol)
    assert [o.instrument_id for o in result.orders] == [option.instrument_id]


def test_close_all_positions(client):
    before = client.get_positions(ACCOUNT)
    result = client.close_positions(ACCOUNT, cancel_orders=False)
    assert {o.instrument_id for o in result.orders} == {
        p.instrument_id for p in before.positions if p.quantity
    }
    (entry,) = rows_for(result.request_id)
    assert entry.path == f"/v1/accounts/{ACCOUNT}/positions" and entry.status_code == 200


def test_submit_list_and_cancel(client, sandbox):
    option = exercisable_option(client)
    key = f"test-{uuid.uuid4()}"
    result = client.submit_instructions(ACCOUNT, [exercise(option, key)])
    assert result.status_code == 200 and not result.partially_rejected
    (row,) = result.rows
    assert row.instruction_id == key and row.status == "SENT" and row.is_stored_upstream
    (entry,) = rows_for(result.request_id)
    assert entry.method == "POST" and entry.request_body == [exercise(option, key).to_wire()]
    assert_no_secret(entry, sandbox.api_key)

    listed = client.list_instructions(ACCOUNT, instrument_id=option.instrument_id)
    assert key in {i.instruction_id for i in listed.instructions}
    assert rows_for(listed.request_id)[0].query == {"instrument_id": option.instrument_id}

    cancelled = client.cancel_instruction(ACCOUNT, row.id)
    assert cancelled.status == "CANCEL_REQUESTED" and cancelled.instruction_id == key
    (entry,) = rows_for(path=f"/v1/accounts/{ACCOUNT}/positions/instructions/{row.id}")
    assert entry.method == "DELETE" and entry.status_code == 200 and entry.request_id


# --- each error class ---------------------------------------------------------------------------


def test_207_is_a_result_with_each_rows_outcome(client, sandbox):
    option = exercisable_option(client)
    good = exercise(option)
    bad = exercise(option, kind="DO_NOT_EXERCISE")  # not the contract's expiration day
    result = client.submit_instructions(ACCOUNT, [good, bad])
    assert result.status_code == 207 and result.partially_rejected and result.error_message
    by_key = {row.instruction_id: row for row in result.rows}
    assert by_key[good.instruction_id].status == "SENT"
    assert by_key[bad.instruction_id].is_rejected and by_key[bad.instruction_id].rejection_reason
    (entry,) = rows_for(result.request_id)
    assert entry.status_code == 207 and entry.error_class is None


def test_400_all_rows_rejected(client):
    option = exercisable_option(client)
    with pytest.raises(errors.BadRequest) as caught:
        client.submit_instructions(ACCOUNT, [exercise(option, kind="DO_NOT_EXERCISE")])
    assert caught.value.status_code == 400 and caught.value.request_id and caught.value.message
    (entry,) = rows_for(caught.value.request_id)
    assert entry.status_code == 400 and entry.error_class == "BadRequest"


def test_401_unknown_key_is_recorded_without_the_key(sandbox):
    bad_client = ClearStreetClient(sandbox.base_url, "not-a-valid-key-123", timeout=5)
    with bad_client, pytest.raises(errors.Unauthorized) as caught:
        bad_client.get_positions(ACCOUNT)
    (entry,) = rows_for(caught.value.request_id)
    assert entry.status_code == 401 and entry.attempt == 1  # a 401 is not retried
    assert_no_secret(entry, "not-a-valid-key-123")


def test_404_unknown_instrument(client):
    with pytest.raises(errors.NotFound) as caught:
        client.close_position(ACCOUNT, "00000000-1111-2222-3333-444444444444")
    (entry,) = rows_for(caught.value.request_id)
    assert entry.status_code == 404 and entry.error_class == "NotFound"


def test_409_duplicate_key_carries_the_rows(client):
    option = exercisable_option(client)
    request = exercise(option)
    client.submit_instructions(ACCOUNT, [request])
    with pytest.raises(errors.Conflict) as caught:
        client.submit_instructions(ACCOUNT, [request])
    assert caught.value.status_code == 409
    (entry,) = rows_for(caught.value.request_id)
    assert entry.status_code == 409 and entry.error_class == "Conflict"


def test_503_on_a_write_is_not_retried(client, sandbox):
    option = exercisable_option(client)
    sandbox.set_faults({"submit_instructions": {"outage": True}})
    request = exercise(option)
    with pytest.raises(errors.ServiceUnavailable) as caught:
        client.submit_instructions(ACCOUNT, [request])
    entries = [e for e in rows_for(method="POST") if e.request_body == [request.to_wire()]]
    assert len(entries) == 1, "a write must never be retried blindly"
    assert entries[0].status_code == 503 and entries[0].request_id == caught.value.request_id


def test_5xx_on_a_read_is_retried_and_each_attempt_is_recorded(client, sandbox):
    sandbox.set_faults({"list_positions": {"error_rate": 1.0, "error_status": 502, "times": 2}})
    page = client.get_positions(19816)
    attempts = rows_for(path="/v1/accounts/19816/positions")[-3:]
    assert [e.attempt for e in attempts] == [1, 2, 3]
    assert [e.status_code for e in attempts] == [502, 502, 200]
    assert attempts[-1].request_id == page.request_id
    assert len({e.request_id for e in attempts}) == 3


def test_reads_give_up_after_their_attempts(client, sandbox):
    sandbox.set_faults({"list_instructions": {"outage": True}})
    with pytest.raises(errors.ServiceUnavailable):
        client.list_instructions(19816)
    assert [e.attempt for e in rows_for(path="/v1/accounts/19816/positions/instructions")[-3:]] == [1, 2, 3]


def test_timeout_is_recorded_with_no_status(sandbox):
    sandbox.set_faults({"list_positions": {"latency_ms": 1500}})
    marker = 900_000 + uuid.uuid4().int % 99_999
    slow = ClearStreetClient(sandbox.base_url, sandbox.api_key, timeout=0.3, read_attempts=1)
    with slow, pytest.raises(errors.UpstreamTimeout):
        slow.get_positions(marker)
    (entry,) = rows_for(path=f"/v1/accounts/{marker}/positions")
    assert entry.status_code is None and entry.request_id is None
    assert entry.error_class == "UpstreamTimeout" and entry.duration_ms >= 250
    assert_no_secret(entry, sandbox.api_key)


def test_dropped_connection_is_recorded(client, sandbox):
    sandbox.set_faults({"cancel_instruction": {"drop_rate": 1.0}})
    server_id = str(uuid.uuid4())
    with pytest.raises(errors.UpstreamConnectionError):
        client.cancel_instruction(ACCOUNT, server_id)
    (entry,) = rows_for(path=f"/v1/accounts/{ACCOUNT}/positions/instructions/{server_id}")
    assert entry.status_code is None and entry.error_class == "UpstreamConnectionError"


def test_malformed_body_keeps_the_raw_text(client, sandbox):
    sandbox.set_faults({"list_positions": {"malformed_rate": 1.0, "malformed_kind": "html"}})
    with pytest.raises(errors.MalformedResponse) as caught:
        client.get_positions(0)
    assert caught.value.raw_text and caught.value.status_code == 200
    entry = rows_for(path="/v1/accounts/0/positions")[-1]
    assert entry.response_body is None and entry.response_text == caught.value.raw_text
    assert entry.error_class == "MalformedResponse"


def test_a_large_answer_is_audited_as_the_exact_text_received(client, sandbox, users):
    from django.test import Client
    from django.urls import reverse

    sandbox.generate(900_002, 400)  # one page of 400 rows: well over the parsed-body limit
    page = client.get_positions(900_002)
    (entry,) = rows_for(page.request_id)
    assert entry.response_body is None and len(entry.response_text) > 64 * 1024
    assert json.loads(entry.response_text)["metadata"]["request_id"] == page.request_id
    assert_no_secret(entry, sandbox.api_key)
    browser = Client()
    browser.force_login(users["compliance"])
    html = browser.get(reverse("audit:detail", args=[entry.pk])).content.decode()
    assert "Kept as the exact text received" in html and page.request_id in html
