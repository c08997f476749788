"""A worker killed in the middle of a submission: the next worker finishes the batch without sending
it a second time. Real workers over Redis, a real SIGKILL, the sandbox over HTTP."""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.conf import settings

from backoffice.audit.models import AuditEntry, PendingCall
from backoffice.celery import app
from backoffice.clearstreet.client import ClearStreetClient
from instructions import services
from instructions.models import Batch
from instructions.services import RowSpec
from tests.conftest import start_worker, stop_worker, wait_for
from tests.fixtures.desk import option

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, databases=["default", "audit"])]


def test_a_worker_killed_mid_submit_is_finished_by_the_next_without_a_second_submission(
    desk, users, sandbox, sandbox_process
):
    queue = f"{settings.CELERY_TASK_DEFAULT_QUEUE}-kill"
    app.conf.task_default_queue = queue  # restored after the test by the suite's autouse fixture
    position = option(desk, "AAPL", put_call="C")
    batch = services.create_batch(users["operations"], desk, [RowSpec(position.pk, "EXERCISE", 2)])
    key = batch.rows.get().instruction_id
    services.submit_for_approval(users["operations"], batch.pk)
    # Clear Street takes its time with this submit: the worker dies while waiting for the answer.
    sandbox.set_faults({"submit_instructions": {"latency_ms": 5000, "times": 1}})

    first = start_worker(queue, "doomed", sandbox_process.base_url)
    try:
        services.approve_batch(users["supervisors"], batch.pk)
        # The POST leaves right after its pending record commits; Clear Street is still working on
        # it (5 s) when the worker dies.
        wait_for(lambda: PendingCall.objects.filter(subject_type="batch", subject_id=str(batch.pk)).exists())
        sent_at = time.monotonic()
        time.sleep(1.0)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=20)
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.SUBMITTING, (
        "the killed worker finished nothing"
    )
    time.sleep(max(0.0, sent_at + 6.5 - time.monotonic()))  # Clear Street finishes storing it (5 s)

    second = start_worker(queue, "next", sandbox_process.base_url)
    try:
        assert services.resume_unfinished_work(older_than_seconds=0) == 1
        wait_for(lambda: Batch.objects.get(pk=batch.pk).status == Batch.Status.SUBMITTED)
    finally:
        stop_worker(second)

    with ClearStreetClient(sandbox.base_url, sandbox.api_key) as client:
        upstream = [i for i in client.list_instructions(122503).instructions if i.instruction_id == key]
    assert len(upstream) == 1, "Clear Street holds the instruction exactly once"
    row = Batch.objects.get(pk=batch.pk).rows.get()
    assert row.status == "SENT" and row.instruction.pk == upstream[0].id
    calls = list(
        AuditEntry.objects.filter(subject_type="batch", subject_id=str(batch.pk), kind="call")
        .order_by("id")
        .values_list("method", "status_code", "error_class")
    )
    # The killed worker's POST was on the record as pending before it left; the next worker first
    # recorded it as sent with no answer, then read the list, and found the row: nothing resent.
    assert calls == [("POST", None, "NoAnswerRecorded"), ("GET", 200, None)], calls
