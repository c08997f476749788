"""The Celery round trip through a real worker over Redis, and enqueue-after-commit."""

import uuid

import pytest
from django.db import transaction

from backoffice.celery import app
from backoffice.tasks import health_check


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_health_task_round_trip_through_a_real_worker(celery_worker_process):
    token = str(uuid.uuid4())
    result = health_check.delay(token)
    assert result.get(timeout=30) == {"token": token, "database": True}


def _queued(queue: str) -> int:
    with app.connection_for_write() as conn:
        return conn.default_channel.client.llen(queue)


@pytest.mark.django_db(transaction=True)
def test_tasks_are_enqueued_only_after_the_transaction_commits():
    queue = f"commit-check-{uuid.uuid4()}"
    with transaction.atomic():
        health_check.apply_async_on_commit(("committed",), queue=queue)
        assert _queued(queue) == 0, "a task left before its transaction committed"
    assert _queued(queue) == 1

    with pytest.raises(RuntimeError), transaction.atomic():
        health_check.apply_async_on_commit(("rolled-back",), queue=queue)
        raise RuntimeError("business failure")
    assert _queued(queue) == 1, "a rolled-back transaction still enqueued its task"

    with app.connection_for_write() as conn:
        conn.default_channel.client.delete(queue)


def test_celery_is_configured_for_idempotent_tasks(settings):
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit
    assert conf.broker_url.startswith(("redis://", "rediss://", "redis+socket://"))
