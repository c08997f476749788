"""Celery entry points of the positions app: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

from positions import services


@shared_task(name="positions.sync_positions", bind=True)
def sync_positions(self, run_id: int) -> str:
    run = services.run_sync(run_id, celery_task_id=self.request.id or "")
    return run.status


@shared_task(name="positions.sync_active_accounts")
def sync_active_accounts() -> int:
    return len(services.sync_active_accounts())


@shared_task(name="positions.execute_close", bind=True)
def execute_close(self, request_id: int) -> str:
    return services.execute_close(request_id, celery_task_id=self.request.id).status
