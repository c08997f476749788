"""Cancels under four eyes, followed to CANCELLED or CANCEL_FAILED by polling."""

from __future__ import annotations

import pytest

from backoffice.audit.models import AuditEntry
from backoffice.workflow import ActionRefused
from instructions import services
from instructions.models import CancelRequest, Instruction
from instructions.services import RowSpec
from tests.fixtures.desk import option

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "audit"])
C = CancelRequest.Status


@pytest.fixture
def sent(desk, users) -> Instruction:
    position = option(desk, "AAPL", put_call="C")
    batch = services.create_batch(users["operations"], desk, [RowSpec(position.pk, "EXERCISE", 1)])
    services.submit_for_approval(users["operations"], batch.pk)
    services.approve_batch(users["supervisors"], batch.pk)
    services.submit_batch(batch.pk)
    return batch.rows.get().instruction


def cancel_through(users, instruction: Instruction) -> CancelRequest:
    cancel = services.request_cancel(users["operations2"], instruction.pk, note="client changed their mind")
    services.approve_cancel(users["supervisors"], cancel.pk)
    return services.execute_cancel(cancel.pk)


def test_cancel_to_cancelled(desk, users, sandbox, sent):
    cancel = cancel_through(users, sent)
    assert cancel.status == C.CANCEL_REQUESTED
    sent.refresh_from_db()
    assert sent.status == "CANCEL_REQUESTED"
    sandbox.advance(60)
    services.sync_instructions(desk)
    cancel.refresh_from_db()
    sent.refresh_from_db()
    assert (cancel.status, sent.status) == (C.CANCELLED, "CANCELLED")
    assert [h.to_status for h in sent.history.all()] == ["SENT", "CANCEL_REQUESTED", "CANCELLED"]
    call = AuditEntry.objects.get(subject_type="cancel_request", subject_id=str(cancel.pk), kind="call")
    assert call.method == "DELETE" and call.path.endswith(sent.pk) and call.status_code == 200
    assert (call.actor_username, call.approver_username) == (
        users["operations2"].username,
        users["supervisors"].username,
    )


def test_cancel_to_cancel_failed(desk, users, sandbox, sent):
    sandbox.set_behaviour(cancel_outcome="CANCEL_FAILED", cancel_failure_reason="venue already processed it")
    cancel = cancel_through(users, sent)
    sandbox.advance(60)
    services.sync_instructions(desk)
    cancel.refresh_from_db()
    assert cancel.status == C.CANCEL_FAILED and "venue already processed" in cancel.error


def test_cancel_rules(desk, users, sent):
    with pytest.raises(ActionRefused, match="role does not allow"):
        services.request_cancel(users["supervisors"], sent.pk)
    cancel = services.request_cancel(users["operations"], sent.pk)
    with pytest.raises(ActionRefused, match="already open"):
        services.request_cancel(users["operations2"], sent.pk)
    with pytest.raises(ActionRefused, match="someone else must approve"):
        services.approve_cancel(users["operations"], cancel.pk)
    with pytest.raises(ActionRefused, match="reason"):
        services.reject_cancel(users["supervisors"], cancel.pk, " ")
    services.reject_cancel(users["supervisors"], cancel.pk, "keep the exercise")
    cancel.refresh_from_db()
    assert cancel.status == C.REJECTED


def test_a_terminal_instruction_cannot_be_cancelled(desk, users, sandbox, sent):
    cancel = cancel_through(users, sent)
    sandbox.advance(60)
    services.sync_instructions(desk)
    assert Instruction.objects.get(pk=sent.pk).status == "CANCELLED"
    cancel.refresh_from_db()
    assert cancel.status == C.CANCELLED
    with pytest.raises(ActionRefused, match="nothing to cancel"):
        services.request_cancel(users["operations"], sent.pk)
    assert CancelRequest.objects.filter(instruction=sent).count() == 1, "the refused request left nothing"


def test_clear_street_says_terminal_409(desk, users, sandbox, sent):
    cancel = services.request_cancel(users["operations"], sent.pk)
    services.approve_cancel(users["supervisors"], cancel.pk)
    sandbox.advance(60)  # it was accepted meanwhile; the sandbox refuses cancelling a terminal instruction
    cancel = services.execute_cancel(cancel.pk)
    assert cancel.status == C.CANCEL_FAILED, cancel.error
    assert "already final" in cancel.error and "ACCEPTED" in cancel.error
    assert cancel.request_id
