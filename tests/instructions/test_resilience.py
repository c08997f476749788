"""What happens on expiration day when things go wrong: stuck workers, late hours, lost rows, races."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone

from backoffice import clock, queues
from backoffice.audit.models import AuditEntry
from backoffice.celery import app
from backoffice.models import Job
from backoffice.workflow import ActionRefused
from instructions import services
from instructions.models import Batch, CancelRequest, Instruction
from instructions.services import RowSpec
from positions import services as positions
from positions.models import CloseRequest, Position
from tests.fixtures.desk import option

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "audit"])
S = Batch.Status


def approved(desk, users, position, kind="EXERCISE", quantity=1) -> Batch:
    batch = services.create_batch(users["operations"], desk, [RowSpec(position.pk, kind, quantity)])
    services.submit_for_approval(users["operations"], batch.pk)
    return services.approve_batch(users["supervisors"], batch.pk)


def submit_calls(batch: Batch) -> int:
    return AuditEntry.objects.filter(
        subject_type="batch", subject_id=str(batch.pk), kind="call", method="POST"
    ).count()


def test_a_decision_whose_save_fails_leaves_no_audit_row(desk, users, monkeypatch):
    batch = services.create_batch(
        users["operations"], desk, [RowSpec(option(desk, "AAPL", put_call="C").pk, "EXERCISE", 1)]
    )
    services.submit_for_approval(users["operations"], batch.pk)

    def failing_save(self, *args, **kwargs):
        raise IntegrityError("the database refused the row")

    monkeypatch.setattr(Batch, "save", failing_save)
    with pytest.raises(IntegrityError):
        services.reject_batch(users["supervisors"], batch.pk, "wrong account")
    monkeypatch.undo()
    assert Batch.objects.get(pk=batch.pk).status == S.PENDING_APPROVAL
    assert not AuditEntry.objects.filter(subject_id=str(batch.pk), action="rejected").exists()


def test_a_batch_stuck_in_submitting_is_queued_again(desk, users):
    batch = approved(desk, users, option(desk, "AAPL", put_call="C"))
    # Approved six minutes ago; a worker began sending it five minutes ago and was never heard of again.
    Job.objects.update(created_at=timezone.now() - timedelta(minutes=6))
    Batch.objects.filter(pk=batch.pk).update(
        status=S.SUBMITTING, last_attempt_at=timezone.now() - timedelta(minutes=5)
    )
    fresh = approved(desk, users, option(desk, "MSFT", put_call="P"))
    Batch.objects.filter(pk=fresh.pk).update(status=S.SUBMITTING, last_attempt_at=timezone.now())
    queue = queues.queue_of(app.conf.task_default_queue, queues.DESK)  # a submission is desk work
    with app.connection_for_write() as conn:
        before = conn.default_channel.client.llen(queue)
        assert services.resume_unfinished_work(older_than_seconds=120) == 1
        assert conn.default_channel.client.llen(queue) == before + 1
        # Handed on once: the sweeper's next round leaves it to the job it queued.
        assert services.resume_unfinished_work(older_than_seconds=120) == 0
    assert services.submit_batch(batch.pk).status == S.SUBMITTED


def test_nothing_is_sent_after_the_batchs_cutoff(desk, users, sandbox):
    batch = approved(desk, users, option(desk, "AAPL", put_call="C"))
    sandbox.set_clock(market_time="16:45")  # the worker was down until after the firm's 16:30 ET
    clock.clear_cache()
    batch = services.submit_batch(batch.pk)
    # An exercise of an option in the money follows exercise by exception: the firm's cutoff governs.
    assert batch.status == S.FAILED and "cutoff (16:30 ET) passed" in batch.last_error
    assert submit_calls(batch) == 0


def test_rows_unreadable_in_the_answer_are_unknown_not_rejected(desk, users, sandbox):
    first, second = option(desk, "AAPL", put_call="C"), option(desk, "MSFT", put_call="P")
    batch = services.create_batch(
        users["operations"], desk, [RowSpec(first.pk, "EXERCISE", 1), RowSpec(second.pk, "EXERCISE", 1)]
    )
    services.submit_for_approval(users["operations"], batch.pk)
    services.approve_batch(users["supervisors"], batch.pk)
    sandbox.set_faults(
        {"submit_instructions": {"bad_value_rows": 2}}
    )  # the 2nd row comes back without a quantity
    batch = services.submit_batch(batch.pk)
    assert batch.status == S.SUBMITTED, "an unreadable row is not a rejection"
    # Clear Street's list, read at once, shows the unreadable row live upstream.
    statuses = dict(batch.rows.values_list("instrument_id", "status"))
    assert statuses == {first.instrument_id: "SENT", second.instrument_id: "SENT"}
    assert batch.rows.get(instrument_id=second.instrument_id).instruction is not None
    listed = AuditEntry.objects.filter(subject_id=str(batch.pk), method="GET", path__endswith="/instructions")
    assert listed.count() == 1


def test_a_row_whose_position_left_the_book_blocks_approval(desk, users):
    itm = option(desk, "AAPL", put_call="C")
    batch = services.create_batch(users["operations"], desk, [RowSpec(itm.pk, "EXERCISE", 1)])
    services.submit_for_approval(users["operations"], batch.pk)
    Position.objects.filter(pk=itm.pk).delete()  # a sync removed it
    with pytest.raises(ActionRefused, match="no longer in the book") as excinfo:
        services.approve_batch(users["supervisors"], batch.pk, confirm_changes=True)
    assert excinfo.value.code == "position_changed"


def test_a_cancel_overtaken_by_acceptance_ends_cancel_failed(desk, users, sandbox):
    batch = services.submit_batch(approved(desk, users, option(desk, "AAPL", put_call="C")).pk)
    instruction = batch.rows.get().instruction
    cancel = services.request_cancel(users["operations2"], instruction.pk)
    services.approve_cancel(users["supervisors"], cancel.pk)
    # The answer to the cancel was lost, and meanwhile the venue accepted the instruction.
    CancelRequest.objects.filter(pk=cancel.pk).update(status=CancelRequest.Status.CANCEL_REQUESTED)
    sandbox.advance(60)
    services.sync_instructions(desk)
    cancel.refresh_from_db()
    assert Instruction.objects.get(pk=instruction.pk).status == "ACCEPTED"
    assert cancel.status == CancelRequest.Status.CANCEL_FAILED and "ACCEPTED" in cancel.error


def test_one_open_close_per_position_and_none_beside_a_close_of_the_account(desk, users):
    aapl = Position.objects.get(account=desk, symbol="AAPL")
    positions.request_close(users["operations"], desk, position=aapl)
    with pytest.raises(ActionRefused, match="already open"):
        positions.request_close(users["operations2"], desk)  # close all, while one is open
    other = Position.objects.get(account=desk, symbol="MSFT")
    positions.request_close(users["operations"], desk, position=other)
    assert CloseRequest.objects.filter(account=desk).count() == 2
    with pytest.raises(IntegrityError):  # the database refuses it even past the service
        CloseRequest.objects.create(
            account=desk, instrument_id=aapl.instrument_id, requested_by=users["operations2"]
        )


def test_approving_without_the_reviewed_version_is_refused_on_the_page(client, desk, users):
    from django.urls import reverse

    batch = services.create_batch(
        users["operations"], desk, [RowSpec(option(desk, "AAPL", put_call="C").pk, "EXERCISE", 1)]
    )
    services.submit_for_approval(users["operations"], batch.pk)
    client.force_login(users["supervisors"])
    page = client.post(reverse("instructions:batch_approve", args=[batch.pk]), follow=True)
    assert "Reload the batch" in page.content.decode()
    assert Batch.objects.get(pk=batch.pk).status == S.PENDING_APPROVAL


def test_the_close_executor_records_its_moves(desk, users):
    aapl = Position.objects.get(account=desk, symbol="AAPL")
    request = positions.request_close(users["operations"], desk, position=aapl)
    positions.approve_close(users["supervisors"], request.pk)
    positions.execute_close(request.pk)
    actions = list(
        AuditEntry.objects.filter(subject_type="close_request", subject_id=str(request.pk), kind="decision")
        .order_by("id")
        .values_list("action", "to_state")
    )
    assert actions == [
        ("requested_close", "pending_approval"),
        ("approved", "approved"),
        ("submitting", "submitting"),
        ("submitted", "submitted"),
    ]
