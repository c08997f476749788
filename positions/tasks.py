"""Celery entry points of the positions app: thin wrappers around services."""

from __future__ import annotations

from celery import Task, shared_task

from positions import services
from positions.queries import sync_targets


@shared_task(name=services.SYNC_POSITIONS, bind=True)
def sync_positions(self: Task, run_id: int) -> str:
    run = services.run_sync(run_id, celery_task_id=self.request.id or "")
    return run.status


@shared_task(name="positions.sync_active_accounts")
def sync_active_accounts() -> int:
    return len(services.request_syncs(sync_targets(), trigger="schedule"))


@shared_task(name=services.EXECUTE_CLOSE, bind=True)
def execute_close(self: Task, request_id: int) -> str:
    return services.execute_close(request_id, celery_task_id=self.request.id).status


@shared_task(name="positions.resume_unfinished_closes")
def resume_unfinished_closes() -> int:
    return services.resume_unfinished_closes()
