"""Maker-checker batches: validation, every transition, four eyes, and exactly-once submission
against the sandbox over real HTTP."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connections

from backoffice import clock
from backoffice.audit.models import AuditEntry
from backoffice.clearstreet.client import ClearStreetClient
from backoffice.clearstreet.types import InstructionRequest
from backoffice.workflow import ActionRefused
from instructions import queries, services
from instructions.models import Batch, BatchRow, Instruction, StatusChange
from instructions.queries import allowed_contracts
from instructions.services import BatchInvalid, RowSpec
from positions.models import Position
from tests.fixtures.desk import option

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "audit"])
S = Batch.Status


def errors_of(excinfo) -> list[tuple[int, str, str]]:
    return [(e.row, e.field, e.message) for e in excinfo.value.errors]


def draft(desk, maker, *rows: tuple[Position, str, int] | tuple[Position, str, int, str]) -> Batch:
    specs = [RowSpec(r[0].pk, r[1], r[2], r[3] if len(r) > 3 else "") for r in rows]
    return services.create_batch(maker, desk, specs)


def approved(desk, users, *rows) -> Batch:
    batch = draft(desk, users["operations"], *rows)
    services.submit_for_approval(users["operations"], batch.pk)
    return services.approve_batch(users["supervisors"], batch.pk)


def submit_calls(batch: Batch) -> list[AuditEntry]:
    return list(
        AuditEntry.objects.filter(
            subject_type="batch", subject_id=str(batch.pk), kind="call", method="POST"
        ).order_by("id")
    )


# --- validation ------------------------------------------------------------------------------------


def test_validation_messages_name_the_row_and_field(desk, users):
    stock = Position.objects.get(account=desk, symbol="AAPL")
    short = option(desk, "MSFT", long=False)
    later = option(desk, "AAPL", expiring_today=False, put_call="P")
    itm = option(desk, "AAPL", put_call="C")
    with pytest.raises(BatchInvalid) as excinfo:
        draft(
            desk,
            users["operations"],
            (stock, "EXERCISE", 1),
            (short, "EXERCISE", 1),
            (later, "DO_NOT_EXERCISE", 1),
            (itm, "EXERCISE", "1.5"),
            (itm, "EXERCISE", 1),
        )
    found = errors_of(excinfo)
    assert found[0][:2] == (0, "position") and "not an option" in found[0][2]
    assert found[1][:2] == (1, "position") and "short position" in found[1][2]
    assert found[2][:2] == (2, "instruction_type") and "only possible on the expiration day" in found[2][2]
    assert found[3][:2] == (3, "quantity") and "whole number" in found[3][2]
    assert found[4][:2] == (4, "position") and "already in this batch" in found[4][2]
    assert not Batch.objects.exists(), "an invalid batch leaves nothing behind"


def test_quantity_bounds_and_one_row_per_contract(desk, users):
    itm = option(desk, "AAPL", put_call="C")
    for quantity in (0, -1, allowed_contracts(itm) + 1):
        with pytest.raises(BatchInvalid, match="quantity must be from 1 to"):
            draft(desk, users["operations"], (itm, "EXERCISE", quantity))
    with pytest.raises(BatchInvalid, match="already in this batch"):
        draft(desk, users["operations"], (itm, "EXERCISE", 1), (itm, "DO_NOT_EXERCISE", 1))


def test_contracts_in_other_open_batches_are_not_available_twice(desk, users):
    itm = option(desk, "AAPL", put_call="C")
    draft(desk, users["operations"], (itm, "EXERCISE", allowed_contracts(itm)))
    with pytest.raises(BatchInvalid, match="already instructed or in other batches"):
        draft(desk, users["operations2"], (itm, "EXERCISE", 1))


def test_exercising_out_of_the_money_needs_an_override_reason(desk, users):
    otm = option(desk, "AAPL", put_call="C")
    otm = (
        Position.objects.filter(
            account=desk, underlying_root="AAPL", put_call="C", expiration_date=otm.expiration_date
        )
        .order_by("-strike")
        .first()
    )
    against = r"out of the money: exercising it costs \$[0-9,.]+ over the market: an instruction against"
    with pytest.raises(BatchInvalid, match=against):
        draft(desk, users["operations"], (otm, "EXERCISE", 1))
    batch = draft(
        desk, users["operations"], (otm, "EXERCISE", 1, "client instruction: exercise for delivery")
    )
    assert batch.rows.get().override_reason.startswith("client instruction")


def test_dne_and_cea_on_the_expiration_day_are_fine(desk, users):
    itm_call, nvda = option(desk, "AAPL", put_call="C"), option(desk, "NVDA")
    # Both go against exercise by exception: each needs the maker's reason, which names the value at stake.
    with pytest.raises(BatchInvalid) as refused:
        draft(desk, users["operations"], (itm_call, "DO_NOT_EXERCISE", 2), (nvda, "CONTRARY_EXERCISE", 3))
    assert [error.field for error in refused.value.errors] == ["override_reason", "override_reason"]
    assert "abandons $2,200.00 of intrinsic value" in refused.value.errors[0].message
    batch = draft(
        desk,
        users["operations"],
        (itm_call, "DO_NOT_EXERCISE", 2, "client instructs: hedge rolled, do not take delivery"),
        (nvda, "CONTRARY_EXERCISE", 3, "client instructs the reverse of the default"),
    )
    assert batch.status == S.DRAFT and batch.rows.count() == 2
    keys = list(batch.rows.values_list("instruction_id", flat=True))
    assert len(set(keys)) == 2 and all(k.startswith("bo-122503-") for k in keys)


# --- transitions and four eyes -------------------------------------------------------------------------


def test_the_happy_path_records_each_transition(desk, users):
    batch = approved(desk, users, (option(desk, "AAPL", put_call="C"), "EXERCISE", 2))
    batch = services.submit_batch(batch.pk)
    assert batch.status == S.SUBMITTED and batch.request_id
    decisions = AuditEntry.objects.filter(
        subject_type="batch", subject_id=str(batch.pk), kind="decision"
    ).order_by("id")
    assert [(d.action, d.from_state, d.to_state) for d in decisions] == [
        ("drafted", None, "draft"),
        ("submitted_for_approval", "draft", "pending_approval"),
        ("approved", "pending_approval", "approved"),
        ("submitting", "approved", "submitting"),
        ("submitted", "submitting", "submitted"),
    ]
    assert decisions[2].actor_username == users["supervisors"].username


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (S.DRAFT, "approve"),
        (S.APPROVED, "withdraw"),
        (S.SUBMITTED, "edit"),
        (S.REJECTED, "submit"),
        (S.DRAFT, "retry"),
        (S.EXPIRED, "approve"),
        (S.WITHDRAWN, "submit"),
    ],
)
def test_forbidden_transitions_are_refused(desk, users, status, action):
    batch = draft(desk, users["operations"], (option(desk, "AAPL", put_call="C"), "EXERCISE", 1))
    Batch.objects.filter(pk=batch.pk).update(status=status)
    maker, checker = users["operations"], users["supervisors"]
    calls = {
        "approve": lambda: services.approve_batch(checker, batch.pk),
        "withdraw": lambda: services.withdraw_batch(maker, batch.pk),
        "edit": lambda: services.update_batch(
            maker, batch.pk, [RowSpec(batch.rows.get().position_id, "EXERCISE", 2)]
        ),
        "submit": lambda: services.submit_for_approval(maker, batch.pk),
        "retry": lambda: services.retry_batch(checker, batch.pk),
    }
    with pytest.raises(ActionRefused):
        calls[action]()
    assert Batch.objects.get(pk=batch.pk).status == status


@pytest.mark.parametrize("maker_role", ["operations", "superuser"])
def test_nobody_approves_their_own_batch(desk, users, maker_role):
    batch = draft(desk, users[maker_role], (option(desk, "AAPL", put_call="C"), "EXERCISE", 1))
    services.submit_for_approval(users[maker_role], batch.pk)
    with pytest.raises(ActionRefused, match="someone else must approve") as excinfo:
        services.approve_batch(users[maker_role], batch.pk)
    assert excinfo.value.code == "self_approval"
    assert Batch.objects.get(pk=batch.pk).status == S.PENDING_APPROVAL


def test_reject_needs_a_reason(desk, users):
    batch = draft(desk, users["operations"], (option(desk, "AAPL", put_call="C"), "EXERCISE", 1))
    services.submit_for_approval(users["operations"], batch.pk)
    with pytest.raises(ActionRefused, match="reason"):
        services.reject_batch(users["supervisors"], batch.pk, "")
    services.reject_batch(users["supervisors"], batch.pk, "wrong account")
    batch.refresh_from_db()
    assert batch.status == S.REJECTED and batch.decision_reason == "wrong account"


def test_an_edit_after_submission_sends_it_back_to_the_queue(desk, users):
    maker, checker = users["operations"], users["supervisors"]
    itm = option(desk, "AAPL", put_call="C")
    batch = draft(desk, maker, (itm, "EXERCISE", 1))
    key = batch.rows.get().instruction_id
    services.submit_for_approval(maker, batch.pk)
    opened_version = Batch.objects.get(pk=batch.pk).version
    services.update_batch(maker, batch.pk, [RowSpec(itm.pk, "EXERCISE", 3)])
    batch.refresh_from_db()
    assert batch.status == S.PENDING_APPROVAL and batch.version == opened_version + 1
    assert batch.rows.get().instruction_id == key, "the key is fixed when the row is drafted"
    with pytest.raises(ActionRefused, match="edited this batch since you opened it"):
        services.approve_batch(checker, batch.pk, version=opened_version)
    services.approve_batch(checker, batch.pk, version=batch.version)
    assert AuditEntry.objects.filter(subject_id=str(batch.pk), action="edited_back_to_queue").exists()


def test_position_changes_since_drafting_must_be_confirmed(desk, users):
    itm = option(desk, "AAPL", put_call="C")
    batch = draft(desk, users["operations"], (itm, "EXERCISE", 2))
    services.submit_for_approval(users["operations"], batch.pk)
    Position.objects.filter(pk=itm.pk).update(available_quantity=itm.available_quantity - 1)
    with pytest.raises(ActionRefused, match="Positions changed") as excinfo:
        services.approve_batch(users["supervisors"], batch.pk)
    assert excinfo.value.code == "position_changed"
    assert "available_quantity" in excinfo.value.message
    drift = queries.position_changes(Batch.objects.get(pk=batch.pk))
    assert [(d.field, d.drafted, d.now) for d in drift] == [
        ("available_quantity", str(itm.available_quantity), str(itm.available_quantity - 1))
    ]
    services.approve_batch(users["supervisors"], batch.pk, confirm_changes=True)
    assert Batch.objects.get(pk=batch.pk).status == S.APPROVED


def test_two_checkers_approving_at_once_produce_one_submission(desk, users):
    batch = draft(desk, users["operations"], (option(desk, "AAPL", put_call="C"), "EXERCISE", 1))
    services.submit_for_approval(users["operations"], batch.pk)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def approve(checker):
        barrier.wait()
        try:
            services.approve_batch(checker, batch.pk)
            outcomes.append("approved")
        except ActionRefused as exc:
            outcomes.append(exc.code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=approve, args=(users[r],)) for r in ("supervisors", "supervisors2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["approved", "invalid_transition"]
    assert AuditEntry.objects.filter(subject_id=str(batch.pk), action="approved").count() == 1

    # Even if the submit task were delivered twice at once, one submission reaches Clear Street.
    def submit():
        try:
            services.submit_batch(batch.pk)
        finally:
            connections.close_all()

    senders = [threading.Thread(target=submit) for _ in range(2)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    assert Batch.objects.get(pk=batch.pk).status == S.SUBMITTED
    assert len(submit_calls(batch)) == 1


def test_batches_expire_after_the_cutoff(desk, users, sandbox):
    batch = draft(desk, users["operations"], (option(desk, "AAPL", put_call="C"), "EXERCISE", 1))
    services.submit_for_approval(users["operations"], batch.pk)
    sandbox.set_clock(market_time="16:45")
    clock.clear_cache()
    with pytest.raises(ActionRefused, match="cutoff"):
        services.approve_batch(users["supervisors"], batch.pk)
    assert services.expire_batches() == 1
    assert Batch.objects.get(pk=batch.pk).status == S.EXPIRED


# --- submission outcomes -------------------------------------------------------------------------------


def test_200_every_row_sent_and_mirrored(desk, users, sandbox):
    rows = [
        (option(desk, "AAPL", put_call="C"), "EXERCISE", 2),
        (option(desk, "NVDA"), "DO_NOT_EXERCISE", 15),
    ]
    batch = services.submit_batch(approved(desk, users, *rows).pk)
    assert batch.status == S.SUBMITTED
    for row in batch.rows.all():
        assert row.status == "SENT"
        assert row.instruction.status == "SENT" and row.instruction.instruction_id == row.instruction_id
        assert [(h.from_status, h.to_status, h.source) for h in row.instruction.history.all()] == [
            ("", "SENT", "submit")
        ]
    (call,) = submit_calls(batch)
    assert call.status_code == 200 and call.request_id == batch.request_id
    # Later Clear Street accepts them; the poll records the change.
    sandbox.advance(60)
    services.sync_instructions(desk)
    for row in batch.rows.all():
        assert row.instruction.status == "ACCEPTED" and row.instruction.accepted_quantity == row.quantity
        assert [h.to_status for h in row.instruction.history.all()] == ["SENT", "ACCEPTED"]


def test_207_each_row_keeps_its_own_outcome(desk, users):
    first, second = option(desk, "AAPL", put_call="C"), option(desk, "NVDA")
    batch = approved(desk, users, (first, "EXERCISE", 2), (second, "EXERCISE", 3, "hedge unwind"))
    with ClearStreetClient() as client:  # the NVDA position is closed upstream before the batch goes out
        client.close_position(122503, second.instrument_id)
    batch = services.submit_batch(batch.pk)
    assert batch.status == S.PARTIALLY_REJECTED
    rows = {row.symbol: row for row in batch.rows.all()}
    assert rows[first.symbol].status == "SENT"
    assert (
        rows[second.symbol].status == "ENGINE_REJECTED" and "exceeds" in rows[second.symbol].rejection_reason
    )
    assert submit_calls(batch)[0].status_code == 207


def test_409_duplicate_is_reconciled_not_a_failure(desk, users):
    itm = option(desk, "AAPL", put_call="C")
    batch = approved(desk, users, (itm, "EXERCISE", 2))
    row = batch.rows.get()
    with ClearStreetClient() as client:  # an earlier attempt landed but its answer was lost
        client.submit_instructions(
            122503, [InstructionRequest("EXERCISE", itm.instrument_id, 2, row.instruction_id)]
        )
    batch = services.submit_batch(batch.pk)
    assert batch.status == S.SUBMITTED, batch.last_error
    row.refresh_from_db()
    assert row.status == "SENT" and row.instruction.instruction_id == row.instruction_id
    assert submit_calls(batch)[0].status_code == 409


def test_400_rows_rejected_with_clear_streets_reason(desk, users, sandbox):
    itm_call = option(desk, "AAPL", put_call="C")
    batch = approved(desk, users, (itm_call, "DO_NOT_EXERCISE", 1, "client says so"))
    sandbox.set_behaviour(cutoff="10:00")  # Clear Street's own cutoff is earlier than the firm's today
    batch = services.submit_batch(batch.pk)
    assert batch.status == S.REJECTED_UPSTREAM
    row = batch.rows.get()
    assert row.status == "REJECTED" and "after the 10:00 ET cutoff" in row.rejection_reason
    assert not Instruction.objects.filter(instruction_id=row.instruction_id).exists()


def test_404_unknown_instrument_rejects_the_batch(desk, users):
    batch = approved(desk, users, (option(desk, "AAPL", put_call="C"), "EXERCISE", 1))
    BatchRow.objects.filter(batch=batch).update(
        instrument_id=str(uuid.uuid4())
    )  # a contract Clear Street no longer knows
    batch = services.submit_batch(batch.pk)
    assert batch.status == S.REJECTED_UPSTREAM
    assert "unknown instrument_id" in batch.rows.get().rejection_reason
    assert submit_calls(batch)[0].status_code == 404


def test_503_keeps_the_batch_submitting_then_fails_after_the_retries_then_a_person_retries(
    desk, users, sandbox
):
    batch = approved(desk, users, (option(desk, "AAPL", put_call="C"), "EXERCISE", 1))
    sandbox.set_faults({"submit_instructions": {"outage": True}})
    with pytest.raises(services.SubmitLater):
        services.submit_batch(batch.pk)
    assert Batch.objects.get(pk=batch.pk).status == S.SUBMITTING
    batch = services.submit_batch(batch.pk, final_attempt=True)
    assert batch.status == S.FAILED and "unavailable after 2 attempts" in batch.last_error
    sandbox.clear_faults()
    services.retry_batch(users["supervisors"], batch.pk)
    batch = services.submit_batch(batch.pk)
    assert batch.status == S.SUBMITTED
    assert [c.status_code for c in submit_calls(batch)] == [503, 503, 200]


def test_a_timeout_is_resolved_by_reading_the_list_not_by_resubmitting(desk, users, sandbox, settings):
    batch = approved(desk, users, (option(desk, "AAPL", put_call="C"), "EXERCISE", 1))
    settings.CLEAR_STREET_TIMEOUT_SECONDS = 0.5
    sandbox.set_faults({"submit_instructions": {"latency_ms": 1500, "times": 1}})
    with pytest.raises(services.SubmitLater, match="timeout"):
        services.submit_batch(batch.pk)
    import time

    time.sleep(1.2)  # the sandbox finishes storing what it received after our timeout
    batch = services.submit_batch(batch.pk)
    assert batch.status == S.SUBMITTED
    calls = submit_calls(batch)
    assert len(calls) == 1 and calls[0].error_class == "UpstreamTimeout", "no second submission"
    assert batch.rows.get().instruction.status == "SENT"


def test_a_worker_that_died_after_sending_is_finished_without_a_second_submission(desk, users):
    itm = option(desk, "AAPL", put_call="C")
    batch = approved(desk, users, (itm, "EXERCISE", 2))
    row = batch.rows.get()
    # The dead worker had moved the batch to submitting and sent it; then it was killed.
    Batch.objects.filter(pk=batch.pk).update(status=S.SUBMITTING, submit_attempts=1)
    with ClearStreetClient() as client:
        client.submit_instructions(
            122503, [InstructionRequest("EXERCISE", itm.instrument_id, 2, row.instruction_id)]
        )
    batch = services.submit_batch(batch.pk)
    assert batch.status == S.SUBMITTED
    assert submit_calls(batch) == [], "the next worker found the rows upstream and sent nothing"
    assert batch.rows.get().instruction.history.first().source == "reconcile"


def test_a_worker_that_died_before_sending_sends_once(desk, users):
    batch = approved(desk, users, (option(desk, "AAPL", put_call="C"), "EXERCISE", 1))
    Batch.objects.filter(pk=batch.pk).update(status=S.SUBMITTING, submit_attempts=1)
    batch = services.submit_batch(batch.pk)
    assert batch.status == S.SUBMITTED and len(submit_calls(batch)) == 1


def test_instructions_entered_elsewhere_appear_unlinked(desk, users):
    services.sync_instructions(desk)
    elsewhere = Instruction.objects.filter(account=desk, batch_row__isnull=True)
    assert elsewhere.exists(), "the demo account has instructions entered outside the back-office"
    assert StatusChange.objects.filter(instruction__in=elsewhere, source="sync").exists()


def test_a_change_of_the_note_alone_keeps_the_rows_and_makes_a_new_version(desk, users):
    itm = option(desk, "AAPL", put_call="C")
    batch = draft(desk, users["operations"], (itm, "EXERCISE", 2))
    rows_before = list(
        batch.rows.values_list("instrument_id", "instruction_type", "quantity", "instruction_id")
    )
    edited = services.update_batch(users["operations"], batch.pk, None, note="for the 16:00 run")
    assert edited.note == "for the 16:00 run" and edited.version == batch.version + 1
    assert (
        list(edited.rows.values_list("instrument_id", "instruction_type", "quantity", "instruction_id"))
        == rows_before
    )
