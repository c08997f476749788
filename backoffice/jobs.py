"""The hand-off from a committed decision to the workers (a transactional outbox).

``enqueue(task, *args)`` writes a ``Job`` row in the caller's transaction and, once that commits,
hands it to Celery by the task's registered name, so services never import the tasks that wrap
them. If the broker cannot take it, the row waits; ``dispatch_waiting`` (run by beat) hands on
every job still waiting. A rolled-back decision leaves no job; a committed one is never lost.
Tasks are idempotent, so a job handed on twice (the queue took it, the row's update did not
commit) costs a duplicate delivery the task answers as a no-op.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from backoffice.models import Job

logger = logging.getLogger(__name__)

# Jobs handed on and older than this are deleted by the sweeper.
KEEP_DISPATCHED = timedelta(days=7)


def enqueue(task: str, *args: Any) -> Job:
    """Queue ``task(*args)`` for a worker, durably, as part of the caller's transaction."""
    job = Job.objects.create(task=task, args=list(args))
    transaction.on_commit(lambda: dispatch(job.pk))
    return job


def dispatch(job_id: int) -> bool:
    """Hand one waiting job to the task queue; whether the queue took it (a failure is kept on the job)."""
    from backoffice.celery import app

    with transaction.atomic():
        job = Job.objects.select_for_update(skip_locked=True).filter(pk=job_id, dispatched_at=None).first()
        if job is None:
            return False  # already handed on, or another sweeper holds it
        job.dispatch_attempts += 1
        try:
            app.send_task(job.task, args=job.args)
        except Exception as exc:  # the broker is unreachable: the sweeper tries again
            job.last_error = f"{exc.__class__.__name__}: {exc}"[:2000]
            job.save(update_fields=["dispatch_attempts", "last_error"])
            logger.warning("job #%s (%s) not handed to the queue: %s", job.pk, job.task, job.last_error)
            return False
        job.dispatched_at = timezone.now()
        job.save(update_fields=["dispatch_attempts", "dispatched_at"])
    return True


def dispatch_waiting(older_than_seconds: float = 5.0, limit: int = 500) -> int:
    """Hand on every job still waiting (older than an on-commit hand-off takes); prune old ones."""
    limit_time = timezone.now() - timedelta(seconds=older_than_seconds)
    waiting = list(
        Job.objects.filter(dispatched_at=None, created_at__lt=limit_time)
        .order_by("id")
        .values_list("pk", flat=True)[:limit]
    )
    handed = sum(dispatch(job_id) for job_id in waiting)
    Job.objects.filter(dispatched_at__lt=timezone.now() - KEEP_DISPATCHED).delete()
    return handed


def handed_since(task: str, args_list: list[int], since: datetime) -> bool:
    """Whether ``task(*args)`` for any of ``args_list`` (one argument each) was queued since ``since``."""
    return Job.objects.filter(
        task=task, args__in=[[arg] for arg in args_list], created_at__gte=since
    ).exists()


def waiting_count() -> int:
    return Job.objects.filter(dispatched_at=None).count()


def resume_waits(older_than_seconds: float | None) -> tuple[timedelta, timedelta]:
    """How long approved work waits for its task, and how long a call to Clear Street can take,
    before a sweeper hands either on again (``older_than_seconds`` overrides both)."""
    from django.conf import settings

    if older_than_seconds is not None:
        return timedelta(seconds=older_than_seconds), timedelta(seconds=older_than_seconds)
    return (
        timedelta(seconds=settings.RESUME_AFTER_SECONDS),
        timedelta(seconds=settings.CLEAR_STREET_TIMEOUT_SECONDS * 3 + 30),
    )
