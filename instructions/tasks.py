"""Celery entry points of the instructions app: thin wrappers around services."""

from __future__ import annotations

from celery import Task, shared_task
from django.conf import settings

from instructions import services
from instructions.queries import accounts_with_live_instructions
from instructions.services.workflows import EXECUTE_CANCEL, SUBMIT_BATCH, SYNC_INSTRUCTIONS
from positions.models import Account
from positions.queries import sync_targets


def _backoff(retries: int) -> int:
    return min(settings.INSTRUCTION_SUBMIT_MAX_BACKOFF_SECONDS, 2 ** (retries + 1))


@shared_task(name=SUBMIT_BATCH, bind=True, max_retries=None)
def submit_batch(self: Task, batch_id: int) -> str:
    final = self.request.retries >= settings.INSTRUCTION_SUBMIT_RETRIES
    try:
        return services.submit_batch(batch_id, celery_task_id=self.request.id, final_attempt=final).status
    except services.SubmitLater as later:
        raise self.retry(countdown=_backoff(self.request.retries), exc=later) from later


@shared_task(name=EXECUTE_CANCEL, bind=True)
def execute_cancel(self: Task, cancel_id: int) -> str:
    return services.execute_cancel(cancel_id, celery_task_id=self.request.id).status


@shared_task(name=SYNC_INSTRUCTIONS, bind=True)
def sync_instructions(self: Task, account_pk: int) -> int:
    return services.sync_instructions(Account.objects.get(pk=account_pk), celery_task_id=self.request.id)


@shared_task(name="instructions.poll_live_instructions")
def poll_live_instructions() -> int:
    """Often: accounts with instructions still in flight (SENT, CANCEL_REQUESTED) or a batch being sent."""
    accounts = list(accounts_with_live_instructions())
    for account in accounts:
        sync_instructions.delay(account.pk)
    return len(accounts)


@shared_task(name="instructions.poll_all_instructions")
def poll_all_instructions() -> int:
    """Less often: every active account, to see instructions entered elsewhere."""
    accounts = sync_targets()
    for account in accounts:
        sync_instructions.delay(account.pk)
    return len(accounts)


@shared_task(name="instructions.expire_batches")
def expire_batches() -> int:
    return services.expire_batches()


@shared_task(name="instructions.resume_unfinished_work")
def resume_unfinished_work() -> int:
    return services.resume_unfinished_work()
