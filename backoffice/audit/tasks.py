"""Celery wrappers around the audit services."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from backoffice.audit import services
from backoffice.audit.models import ChainVerification


@shared_task(name="audit.verify_chain")
def verify_chain(
    trigger: str = ChainVerification.Trigger.SCHEDULED, requested_by: str = "", run_id: int | None = None
) -> dict[str, Any]:
    """Nightly (see CELERY_BEAT_SCHEDULE) and on a compliance request (``run_id``, the request's
    record): check the hash chain."""
    run = services.run_verification(trigger=trigger, requested_by=requested_by, run_id=run_id)
    return {"id": run.pk, "ok": run.ok, "rows_checked": run.rows_checked, "first_bad_id": run.first_bad_id}


@shared_task(name="audit.resolve_interrupted_calls")
def resolve_interrupted_calls() -> int:
    """Calls left pending by a process that died, once no call could still be waiting for its answer."""
    from datetime import timedelta

    from django.conf import settings

    return services.resolve_interrupted_calls(older_than=timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT))


@shared_task(name="audit.checkpoint_chain")
def checkpoint_chain() -> dict[str, Any] | None:
    """Beat, every AUDIT_ANCHOR_INTERVAL_SECONDS: anchor the chain's head outside the database.

    A chain that no longer verifies is not anchored: ``ChainBroken`` fails the task (logged), and the
    failed verification it ran shows on the dashboard.
    """
    checkpoint = services.checkpoint_chain()
    return None if checkpoint is None else {"head_id": checkpoint.head_id, "count": checkpoint.count}
