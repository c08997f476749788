"""Queues by urgency: desk work goes where only desk workers look, so a backlog elsewhere never
delays a submission; every task the project defines has its queue decided."""

from __future__ import annotations

import pytest
from django.conf import settings

from backoffice import queues
from backoffice.audit.tasks import verify_chain
from backoffice.celery import app
from instructions import services
from instructions.models import Batch
from instructions.services import RowSpec
from tests.conftest import start_worker, stop_worker, wait_for
from tests.fixtures.desk import option


def test_every_task_of_the_project_has_an_urgency():
    app.loader.import_default_modules()
    ours = {name for name in app.tasks if not name.startswith("celery.")}
    assert ours, "the project's tasks are registered"
    assert not ours - set(queues.URGENCY), f"tasks with no queue decided: {ours - set(queues.URGENCY)}"
    assert set(queues.URGENCY.values()) == set(queues.KINDS)


def test_a_task_is_routed_under_the_sending_apps_prefix():
    before = app.conf.task_default_queue
    app.conf.task_default_queue = "firm-a"
    try:
        assert queues.route("instructions.submit_batch", (), {}, {}) == {"queue": "firm-a.desk"}
        assert queues.route("positions.sync_positions", (), {}, {}) == {"queue": "firm-a.sync"}
        assert queues.route("audit.verify_chain", (), {}, {}) == {"queue": "firm-a.maintenance"}
        assert queues.route("someone.elses_task", (), {}, {}) is None
    finally:
        app.conf.task_default_queue = before


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, databases=["default", "audit"])
def test_a_submission_is_not_queued_behind_a_backlog_of_verifications(desk, users, sandbox, sandbox_process):
    queue = f"{settings.CELERY_TASK_DEFAULT_QUEUE}-urgency"
    app.conf.task_default_queue = queue  # restored after the test by the suite's autouse fixture
    maintenance = queues.queue_of(queue, queues.MAINTENANCE)
    for _ in range(5):  # compliance asked again and again; nothing serves the maintenance queue
        verify_chain.delay()
    position = option(desk, "AAPL", put_call="C")
    batch = services.create_batch(users["operations"], desk, [RowSpec(position.pk, "EXERCISE", 2)])
    services.submit_for_approval(users["operations"], batch.pk)
    desk_worker = start_worker(
        queue, "desk-only", sandbox_process.base_url, consume=[queue, queues.queue_of(queue, queues.DESK)]
    )
    try:
        services.approve_batch(users["supervisors"], batch.pk)
        wait_for(lambda: Batch.objects.get(pk=batch.pk).status == Batch.Status.SUBMITTED)
    finally:
        stop_worker(desk_worker)
        with app.connection_for_write() as conn:
            waiting = conn.default_channel.client.llen(maintenance)
            conn.default_channel.client.delete(maintenance)
    assert waiting == 5, "the verifications wait on their own queue, untouched by the desk's worker"
