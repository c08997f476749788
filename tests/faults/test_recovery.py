"""Crash and malformed-answer rehearsals: nothing lost, nothing sent twice, nothing unaudited.

For a batch's submit, a cancel and a close, a real Celery worker is killed with SIGKILL at each step
of the call (``backoffice.failpoints``: before the send, after the send and before the answer is
recorded, after it is recorded and before the work's end state), the broker is unreachable when an
approval commits, PostgreSQL restarts while a call is out, and Clear Street's answer is each of the
malformed ones seen in the wild. Each case checks, from the sandbox's own request log, that every
idempotency key was taken once; that every attempt left one audit row; and that the work ends in a
state a person can act on. docs/recovery.md carries the table of cases and outcomes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connections
from kombu.exceptions import OperationalError

from backoffice import embedded, jobs
from backoffice.audit.models import AuditEntry, PendingCall
from backoffice.celery import app
from backoffice.clearstreet.client import ClearStreetClient
from backoffice.clearstreet.types import InstructionRequest
from backoffice.models import Job
from instructions import services
from instructions.models import Batch, CancelRequest
from instructions.services import RowSpec
from positions import services as positions
from positions.models import CloseRequest
from tests.conftest import start_worker, stop_worker, wait_for
from tests.fixtures.desk import option

pytestmark = [
    pytest.mark.faults,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases=["default", "audit"]),
]
POINTS = ("call.before_send", "call.after_send", "call.after_record")
S = Batch.Status


# --- what reached Clear Street, and what the record says ---------------------------------------------


def logged(sandbox, endpoint: str) -> list[dict]:
    return sandbox.requests(endpoint)


def carrying(sandbox, key: str) -> list[int | None]:
    """The statuses of every submit that reached Clear Street carrying ``key``, in order."""
    return [r["status"] for r in logged(sandbox, "submit_instructions") if key in r["body"]]


def keys_taken(sandbox, key: str) -> int:
    """How many instructions Clear Street holds under ``key`` (its list is the truth)."""
    with ClearStreetClient(sandbox.base_url, sandbox.api_key) as client:
        return sum(i.instruction_id == key for i in client.list_instructions(122503).instructions)


def attempts(subject_type: str, pk: int, method: str) -> list[tuple[int | None, str | None]]:
    """The audit's rows of the calls made for one object: (status, error class) each."""
    return list(
        AuditEntry.objects.filter(subject_type=subject_type, subject_id=str(pk), kind="call", method=method)
        .order_by("id")
        .values_list("status_code", "error_class")
    )


@contextmanager
def worker(queue: str, sandbox_process, name: str, failpoint: str | None = None) -> Iterator:
    """A real worker on ``queue``; with a failpoint, a solo worker that dies where it is named."""
    env = {"BACKOFFICE_FAILPOINTS": failpoint} if failpoint else None
    process = start_worker(
        queue, name, sandbox_process.base_url, env=env, pool="solo" if failpoint else "prefork"
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            stop_worker(process)


@pytest.fixture
def queue(settings) -> str:
    name = f"{settings.CELERY_TASK_DEFAULT_QUEUE}-faults-{time.monotonic_ns()}"
    app.conf.task_default_queue = name  # restored after the test by the suite's autouse fixture
    return name


def pending_batch(desk, users, kind: str = "EXERCISE", quantity: int = 1, why: str = "") -> tuple[Batch, str]:
    batch = services.create_batch(
        users["operations"], desk, [RowSpec(option(desk, "AAPL", put_call="C").pk, kind, quantity, why)]
    )
    services.submit_for_approval(users["operations"], batch.pk)
    return batch, batch.rows.get().instruction_id


def sent_instruction(desk, users):
    batch, _ = pending_batch(desk, users)
    services.approve_batch(users["supervisors"], batch.pk)
    return services.submit_batch(batch.pk).rows.get().instruction


# --- a worker killed at each step ---------------------------------------------------------------------


@pytest.mark.parametrize("point", POINTS)
def test_a_batch_whose_worker_is_killed_is_sent_once(point, desk, users, sandbox, sandbox_process, queue):
    batch, key = pending_batch(desk, users)
    with worker(queue, sandbox_process, "doomed", point) as doomed:
        services.approve_batch(users["supervisors"], batch.pk)
        wait_for(lambda: doomed.poll() is not None)
    assert Batch.objects.get(pk=batch.pk).status == S.SUBMITTING, "killed mid-work: nothing settled"
    assert PendingCall.objects.exists() is (point != "call.after_record")
    with worker(queue, sandbox_process, "next"):
        assert services.resume_unfinished_work(older_than_seconds=0) == 1
        wait_for(lambda: Batch.objects.get(pk=batch.pk).status == S.SUBMITTED)
    assert keys_taken(sandbox, key) == 1
    assert not PendingCall.objects.exists(), "every attempt ended on the record"
    posts = attempts("batch", batch.pk, "POST")
    if point == "call.before_send":  # the killed attempt never left: on the record as such, then sent
        assert posts == [(None, "NoAnswerRecorded"), (200, None)]
    elif point == "call.after_send":  # it landed with its answer unrecorded: found in the list, not resent
        assert posts == [(None, "NoAnswerRecorded")]
    else:  # its answer is on the record: found in the list, not resent
        assert posts == [(200, None)]
    assert carrying(sandbox, key) == [200], "the key reached Clear Street once"


@pytest.mark.parametrize("point", POINTS)
def test_a_cancel_whose_worker_is_killed_lands_once(point, desk, users, sandbox, sandbox_process, queue):
    instruction = sent_instruction(desk, users)
    cancel = services.request_cancel(users["operations"], instruction.pk)
    with worker(queue, sandbox_process, "doomed", point) as doomed:
        services.approve_cancel(users["supervisors"], cancel.pk)
        wait_for(lambda: doomed.poll() is not None)
    with worker(queue, sandbox_process, "next"):
        assert services.resume_unfinished_work(older_than_seconds=0) == 1
        wait_for(
            lambda: CancelRequest.objects.get(pk=cancel.pk).status == CancelRequest.Status.CANCEL_REQUESTED
        )
    sandbox.advance(60)
    services.sync_instructions(desk)
    assert CancelRequest.objects.get(pk=cancel.pk).status == CancelRequest.Status.CANCELLED
    cancels = [r for r in logged(sandbox, "cancel_instruction") if instruction.pk in r["path"]]
    assert len(cancels) == 1, "the cancel reached Clear Street once"
    deletes = attempts("cancel_request", cancel.pk, "DELETE")
    expected = {
        "call.before_send": [(None, "NoAnswerRecorded"), (200, None)],
        "call.after_send": [(None, "NoAnswerRecorded")],
        "call.after_record": [(200, None)],
    }[point]
    assert deletes == expected
    assert not PendingCall.objects.exists()


@pytest.mark.parametrize("point", POINTS)
def test_a_close_whose_worker_is_killed_is_never_resent(point, desk, users, sandbox, sandbox_process, queue):
    position = option(desk, "MSFT", put_call="P")
    close = positions.request_close(users["operations"], desk, position=position)
    with worker(queue, sandbox_process, "doomed", point) as doomed:
        positions.approve_close(users["supervisors"], close.pk)
        wait_for(lambda: doomed.poll() is not None)
    with worker(queue, sandbox_process, "next"):
        assert positions.resume_unfinished_closes(older_than_seconds=0) == 1
        wait_for(lambda: CloseRequest.objects.get(pk=close.pk).status not in CloseRequest.OPEN)
    close.refresh_from_db()
    sent = [r for r in logged(sandbox, "close_position") if r["method"] == "DELETE"]
    assert len(sent) == (0 if point == "call.before_send" else 1), "a close is never sent twice"
    if point == "call.after_record":
        # Its answer reached the record: the orders are kept from it.
        assert close.status == CloseRequest.Status.SUBMITTED and close.orders.count() == 1
    else:
        assert (
            close.status == CloseRequest.Status.UNKNOWN
            and "check the account's orders" in close.error.lower()
        )
    assert len(attempts("close_request", close.pk, "DELETE")) == 1
    assert not PendingCall.objects.exists()


# --- the broker and the database fail -----------------------------------------------------------------


def test_an_approval_made_while_the_broker_is_down_is_sent_once_it_is_back(
    client, desk, users, sandbox, sandbox_process, queue, monkeypatch
):
    batch, key = pending_batch(desk, users)

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to the broker: Connection refused.")

    monkeypatch.setattr(app, "send_task", broker_down)
    client.force_login(users["supervisors"])
    response = client.post(f"/instructions/batches/{batch.pk}/approve/", {"version": batch.version})
    assert response.status_code == 302, "the approval stands; the page does not fail"
    assert Batch.objects.get(pk=batch.pk).status == S.APPROVED
    waiting = Job.objects.get(args=[batch.pk], dispatched_at=None)
    assert "Connection refused" in waiting.last_error
    monkeypatch.undo()  # the broker is back
    with worker(queue, sandbox_process, "after-outage"):
        assert jobs.dispatch_waiting(older_than_seconds=0) == 1
        wait_for(lambda: Batch.objects.get(pk=batch.pk).status == S.SUBMITTED)
    assert keys_taken(sandbox, key) == 1 and carrying(sandbox, key) == [200]
    assert attempts("batch", batch.pk, "POST") == [(200, None)]


@pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")),
    reason="restarts the embedded PostgreSQL; a server given by DATABASE_URL is not this run's to restart",
)
def test_a_postgresql_restart_while_a_submit_is_out(desk, users, sandbox, sandbox_process, queue):
    batch, key = pending_batch(desk, users)
    sandbox.set_faults({"submit_instructions": {"latency_ms": 4000, "times": 1}})
    with worker(queue, sandbox_process, "through-restart"):
        services.approve_batch(users["supervisors"], batch.pk)
        wait_for(lambda: PendingCall.objects.exists())  # the POST is on its way
        embedded.restart_postgres()  # every connection is cut while Clear Street works on it
        connections.close_all()
        time.sleep(5)  # the worker gets its answer and cannot record it
        assert Batch.objects.get(pk=batch.pk).status == S.SUBMITTING
        assert services.resume_unfinished_work(older_than_seconds=0) == 1
        wait_for(lambda: Batch.objects.get(pk=batch.pk).status == S.SUBMITTED)
    assert keys_taken(sandbox, key) == 1 and carrying(sandbox, key) == [200]
    assert attempts("batch", batch.pk, "POST") == [(None, "NoAnswerRecorded")]
    assert not PendingCall.objects.exists()


# --- malformed answers ----------------------------------------------------------------------------------


def test_a_503_with_an_http_date_retry_after_is_recorded_and_retried(desk, users, sandbox, settings):
    batch, key = pending_batch(desk, users)
    services.approve_batch(users["supervisors"], batch.pk)
    stamp = "Wed, 21 Oct 2015 07:28:00 -0000"  # a zone Python reads as naive
    sandbox.set_faults({"submit_instructions": {"outage": True, "retry_after": stamp, "times": 1}})
    with pytest.raises(services.SubmitLater):
        services.submit_batch(batch.pk)
    assert services.submit_batch(batch.pk, final_attempt=True).status == S.SUBMITTED
    assert attempts("batch", batch.pk, "POST") == [(503, "ServiceUnavailable"), (200, None)]
    assert keys_taken(sandbox, key) == 1 and carrying(sandbox, key) == [503, 200], "refused, then taken once"


@pytest.mark.parametrize("kind", ["bad_gzip", "deep_json"])
def test_an_unreadable_answer_is_settled_from_the_list(kind, desk, users, sandbox):
    batch, key = pending_batch(desk, users)
    services.approve_batch(users["supervisors"], batch.pk)
    sandbox.set_faults({"submit_instructions": {"malformed_rate": 1, "malformed_kind": kind, "times": 1}})
    batch = services.submit_batch(batch.pk)
    assert batch.status == S.SUBMITTED and batch.rows.get().status == "SENT"
    assert attempts("batch", batch.pk, "POST") == [(None if kind == "bad_gzip" else 200, "MalformedResponse")]
    assert keys_taken(sandbox, key) == 1 and len(carrying(sandbox, key)) == 1


def test_an_oversized_request_id_is_kept_whole(desk, users, sandbox):
    batch, key = pending_batch(desk, users)
    services.approve_batch(users["supervisors"], batch.pk)
    sandbox.set_faults({"submit_instructions": {"request_id_length": 300, "times": 1}})
    batch = services.submit_batch(batch.pk)
    assert batch.status == S.SUBMITTED and len(batch.request_id) == 300
    assert keys_taken(sandbox, key) == 1 and carrying(sandbox, key) == [200]
    assert AuditEntry.objects.get(subject_id=str(batch.pk), method="POST").request_id == batch.request_id


def test_a_per_row_duplicate_inside_a_207_is_linked_not_rejected(desk, users, sandbox):
    first, second = option(desk, "AAPL", put_call="C"), option(desk, "MSFT", put_call="P")
    batch = services.create_batch(
        users["operations"], desk, [RowSpec(first.pk, "EXERCISE", 1), RowSpec(second.pk, "EXERCISE", 1)]
    )
    services.submit_for_approval(users["operations"], batch.pk)
    services.approve_batch(users["supervisors"], batch.pk)
    landed = batch.rows.get(instrument_id=first.instrument_id)
    with ClearStreetClient(sandbox.base_url, sandbox.api_key) as client:  # an earlier attempt that landed
        client.submit_instructions(
            122503, [InstructionRequest("EXERCISE", first.instrument_id, 1, landed.instruction_id)]
        )
    batch = services.submit_batch(batch.pk)
    answer = [r for r in logged(sandbox, "submit_instructions") if r["status"] == 207]
    assert answer and json.loads(answer[-1]["body"])[0]["instruction_id"] == landed.instruction_id
    assert batch.status == S.SUBMITTED, "the duplicate is the row already live upstream, not a rejection"
    assert set(batch.rows.values_list("status", flat=True)) == {"SENT"}
    assert batch.rows.get(pk=landed.pk).instruction is not None
    for row in batch.rows.all():
        assert keys_taken(sandbox, row.instruction_id) == 1, "each key held once"
    assert attempts("batch", batch.pk, "POST") == [(207, None)]
