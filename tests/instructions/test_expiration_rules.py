"""Expiration day's rules, end to end against the sandbox: prices with a source, cutoffs that govern,
failures that stay loud until a person deals with them, retries that are new approvals."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from backoffice import clock
from backoffice.audit.models import AuditEntry
from backoffice.workflow import ActionRefused
from instructions import queries, services
from instructions.models import Batch, BatchRow
from instructions.services import BatchInvalid, RowSpec
from positions import services as positions
from positions.models import Account, Position
from positions.queries import OFFICIAL_CLOSE, price_book
from positions.services import PriceLine, PricesInvalid
from tests.fixtures.desk import option
from tests.positions.factories import make_position

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "audit"])
S = Batch.Status


def at(sandbox, market_time: str) -> None:
    sandbox.set_clock(market_time=market_time)
    clock.clear_cache()


def draft(users, desk, *rows: tuple[Position, str, int, str]) -> Batch:
    specs = [RowSpec(p.pk, kind, n, why) for p, kind, n, why in rows]
    batch = services.create_batch(users["operations"], desk, specs)
    services.submit_for_approval(users["operations"], batch.pk)
    return batch


# --- underlying prices with a source -------------------------------------------------------------------


def test_official_close_beats_any_position_and_any_account_prices_an_options_only_one(desk, users):
    itm = option(desk, "AAPL", put_call="C")
    own = Position.objects.get(account=desk, instrument_id=itm.underlying_instrument_id)
    day = itm.expiration_date
    # An options-only account: its own book has no AAPL stock, another followed account's does.
    lonely = Account.objects.create(number=777001, name="Options only")
    copy = make_position(lonely, itm.symbol, "4", "10.00", instrument_id="lonely-aapl-call")
    copy.underlying_instrument_id = itm.underlying_instrument_id
    copy.save()
    quote = price_book([copy], day).price_for(copy)
    assert (quote.price, quote.source) == (own.instrument_price, f"position in account {desk.number}")
    positions.record_official_closes(users["operations"], [PriceLine("aapl", "171.25", day.isoformat())])
    quote = price_book([copy], day).price_for(copy)
    assert (quote.price, quote.source, quote.recorded_by) == (Decimal("171.25"), OFFICIAL_CLOSE, "ops_alice")
    assert price_book([copy], day + timedelta(days=1)).price_for(copy).source != OFFICIAL_CLOSE, (
        "an official close is for its own business date"
    )
    recorded = AuditEntry.objects.get(action="recorded_official_close")
    assert recorded.after["close"] == "171.25" and recorded.actor_username == "ops_alice"


def test_a_price_upload_is_all_or_nothing_and_names_every_bad_line(desk, users):
    lines = [
        PriceLine("AAPL", "171.25", "2026-04-23"),
        PriceLine("MSFT", "n/a", "2026-04-23"),
        PriceLine("NV DA", "900", "2026-04-23"),
        PriceLine("AAPL", "171.30", "2026-04-23"),
    ]
    with pytest.raises(PricesInvalid) as refused:
        positions.record_official_closes(users["operations"], lines, source="uploaded")
    assert [error.line for error in refused.value.errors] == [2, 3, 4]
    assert "not a number" in refused.value.errors[0].message
    assert not AuditEntry.objects.filter(
        subject_type="official_close", subject_id__startswith="2026-04-23"
    ).exists()
    with pytest.raises(ActionRefused, match="role does not allow"):
        positions.record_official_closes(users["compliance"], lines[:1])


def test_rows_without_a_price_are_counted_and_never_out_of_the_money(desk, users, sandbox):
    itm = option(desk, "AAPL", put_call="C")
    Position.objects.filter(instrument_id=itm.underlying_instrument_id).delete()
    sheet = queries.worksheet(users["operations"], underlying="AAPL")
    assert sheet.unpriced >= 1
    row = next(r for r in sheet.rows if r.position.pk == itm.pk)
    assert row.price is None and row.default.value == "UNKNOWN" and row.in_the_money is None
    with pytest.raises(BatchInvalid, match="has no underlying price"):
        services.create_batch(users["operations"], desk, [RowSpec(itm.pk, "EXERCISE", 1)])


def test_the_pin_band_flags_strikes_near_the_underlying(desk, users, settings):
    itm = option(desk, "AAPL", put_call="C")
    day = itm.expiration_date.isoformat()
    close = itm.strike + Decimal("0.20")
    positions.record_official_closes(users["operations"], [PriceLine("AAPL", str(close), day)])
    row = next(
        r for r in queries.worksheet(users["operations"], underlying="AAPL").rows if r.position.pk == itm.pk
    )
    assert row.assessment.pin_risk and row.in_the_money == Decimal("0.20")
    settings.PIN_RISK_BAND = "0.10"
    row = next(
        r for r in queries.worksheet(users["operations"], underlying="AAPL").rows if r.position.pk == itm.pk
    )
    assert not row.assessment.pin_risk


# --- cutoffs that govern ----------------------------------------------------------------------------


def test_after_the_firms_cutoff_a_cea_still_goes_and_an_exercise_in_the_money_is_refused_saying_why(
    desk, users, sandbox
):
    itm = option(desk, "AAPL", put_call="C")
    at(sandbox, "16:32")
    refusals = queries.guidance([itm], clock.now())[itm.pk]
    assert refusals["CONTRARY_EXERCISE"] == "" and refusals["DO_NOT_EXERCISE"] == ""
    assert "firm's cutoff for that (16:30 ET) has passed" in refusals["EXERCISE"]
    assert "contrary instructions remain possible until 17:30 ET" in refusals["EXERCISE"]
    with pytest.raises(BatchInvalid, match="16:30 ET"):
        services.create_batch(users["operations"], desk, [RowSpec(itm.pk, "EXERCISE", 1)])
    batch = draft(users, desk, (itm, "CONTRARY_EXERCISE", 1, "client wants the contracts to lapse"))
    services.approve_batch(users["supervisors"], batch.pk)
    assert services.submit_batch(batch.pk).status == S.SUBMITTED
    at(sandbox, "17:31")
    with pytest.raises(ActionRefused, match="last cutoff") as late:
        services.create_batch(users["operations"], desk, [RowSpec(itm.pk, "CONTRARY_EXERCISE", 1, "late")])
    assert late.value.code == "past_cutoff"


def test_a_batch_about_to_expire_warns_then_expires_loudly(desk, users, sandbox):
    batch = draft(users, desk, (option(desk, "AAPL", put_call="C"), "EXERCISE", 1, ""))
    at(sandbox, "16:05")
    warning = [i for i in queries.attention_items(users["operations"]) if i.pk == batch.pk]
    assert warning and warning[0].severity == queries.AMBER and "expires at 16:30 ET" in warning[0].what
    assert not queries.attention_items(users["operations"], warnings=False), (
        "the badge counts what went wrong, not warnings"
    )
    at(sandbox, "16:31")
    assert services.expire_batches() == 1
    batch.refresh_from_db()
    assert batch.status == S.EXPIRED
    item = next(i for i in queries.attention_items(users["operations"]) if i.pk == batch.pk)
    assert item.severity == queries.RED and "expired before it was approved" in item.what
    expired = AuditEntry.objects.get(subject_id=str(batch.pk), action="expired")
    assert (expired.actor_username, expired.approver_username) == ("system", None)


# --- failures stay loud ------------------------------------------------------------------------------


def test_a_failed_dne_stays_on_the_list_until_acknowledged_with_a_reason(desk, users, sandbox, settings):
    settings.INSTRUCTION_SUBMIT_RETRIES = 1
    itm = option(desk, "AAPL", put_call="C")
    batch = draft(users, desk, (itm, "DO_NOT_EXERCISE", 2, "client keeps the calls"))
    services.approve_batch(users["supervisors"], batch.pk)
    sandbox.set_faults({"submit_instructions": {"outage": True}})
    batch = services.submit_batch(batch.pk, final_attempt=True)
    assert batch.status == S.FAILED
    failed = AuditEntry.objects.get(subject_id=str(batch.pk), action="failed")
    assert (failed.actor_username, failed.approver_username) == ("system", None), "no person made this move"
    item = next(i for i in queries.attention_items(users["operations"]) if i.pk == batch.pk)
    assert item.severity == queries.RED and itm.instrument_id in item.instrument_ids
    row = next(
        r for r in queries.worksheet(users["operations"], underlying="AAPL").rows if r.position.pk == itm.pk
    )
    assert row.attention and "did not reach Clear Street" in row.attention[0].what
    with pytest.raises(ActionRefused) as missing:
        services.acknowledge_batch(users["operations2"], batch.pk, "  ")
    assert missing.value.code == "reason_required"
    with pytest.raises(ActionRefused, match="role does not allow"):
        services.acknowledge_batch(users["compliance"], batch.pk, "seen")
    services.acknowledge_batch(users["operations2"], batch.pk, "called the desk; redrafting by phone")
    assert not [i for i in queries.attention_items(users["operations"]) if i.pk == batch.pk]
    ack = AuditEntry.objects.get(subject_id=str(batch.pk), action="acknowledged")
    assert (ack.actor_username, ack.reason) == ("ops_bob", "called the desk; redrafting by phone")


def test_a_retry_is_a_new_approval_checked_again(desk, users, sandbox, settings):
    settings.INSTRUCTION_SUBMIT_RETRIES = 1
    itm = option(desk, "AAPL", put_call="C")
    held = queries.allowed_contracts(itm)  # what is held, less what the seeded instructions claim
    batch = draft(users, desk, (itm, "EXERCISE", held, ""))
    services.approve_batch(users["supervisors"], batch.pk)
    sandbox.set_faults({"submit_instructions": {"outage": True}})
    services.submit_batch(batch.pk, final_attempt=True)
    sandbox.clear_faults()
    for person in ("operations", "operations2", "compliance"):
        with pytest.raises(ActionRefused):
            services.retry_batch(users[person], batch.pk)
    # The failed batch no longer claims its contracts: another batch takes them all and is approved.
    other = draft(users, desk, (itm, "EXERCISE", held, ""))
    services.approve_batch(users["supervisors"], other.pk)
    with pytest.raises(BatchInvalid, match="no contract can be instructed now"):
        services.retry_batch(users["supervisors2"], batch.pk)
    assert Batch.objects.get(pk=batch.pk).status == S.FAILED, "a refused retry changes nothing"
    # Once the other batch is out of the way (its instructions cancelled upstream, say), the retry goes.
    Batch.objects.filter(pk=other.pk).update(status=S.WITHDRAWN)
    retried = services.retry_batch(users["supervisors2"], batch.pk)
    assert (retried.status, retried.decided_by.username) == (S.APPROVED, "sup_dan")
    assert services.submit_batch(batch.pk).status == S.SUBMITTED
    call = AuditEntry.objects.filter(subject_id=str(batch.pk), method="POST", status_code=200).get()
    assert call.approver_username == "sup_dan", "the call that went is recorded under the new approval"


def test_rows_whose_fate_is_unknown_keep_their_claim(desk, users, sandbox, settings):
    itm = option(desk, "AAPL", put_call="C")
    held = queries.allowed_contracts(itm)
    batch = draft(users, desk, (itm, "EXERCISE", held, ""))
    services.approve_batch(users["supervisors"], batch.pk)
    # The answer cannot be read, and the list (the same outage) cannot be either: the fate is unknown.
    BatchRow.objects.filter(batch=batch).update(status="UNKNOWN")
    Batch.objects.filter(pk=batch.pk).update(status=S.FAILED)
    assert queries.allowed_contracts(itm) == 0
    with pytest.raises(BatchInvalid, match="no contract can be instructed now"):
        services.create_batch(users["operations2"], desk, [RowSpec(itm.pk, "EXERCISE", 1)])


def test_drift_refusals_give_the_real_figures(desk, users):
    itm = option(desk, "AAPL", put_call="C")
    Position.objects.filter(pk=itm.pk).update(available_quantity=0)
    with pytest.raises(BatchInvalid) as refused:
        services.create_batch(users["operations"], desk, [RowSpec(itm.pk, "EXERCISE", 1)])
    message = refused.value.errors[0].message
    assert f"{int(itm.quantity)} held, 0 available" in message and "from 1 to 0" not in message


def test_an_accepted_instruction_says_why_it_cannot_be_cancelled(desk, users, sandbox):
    batch = draft(users, desk, (option(desk, "AAPL", put_call="C"), "EXERCISE", 1, ""))
    services.approve_batch(users["supervisors"], batch.pk)
    services.submit_batch(batch.pk)
    sandbox.advance(60)
    services.sync_instructions(desk)
    instruction = Batch.objects.get(pk=batch.pk).rows.get().instruction
    assert instruction.status == "ACCEPTED"
    with pytest.raises(ActionRefused, match="accepted this instruction: it is final"):
        services.request_cancel(users["operations"], instruction.pk)
