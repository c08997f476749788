"""Celery queues by urgency, so desk work never waits behind a sync or a chain verification.

Each deployment (and each test run) has a prefix, ``CELERY_QUEUE``; its queues are the prefix itself
(tasks nobody routed) and ``<prefix>.desk``, ``<prefix>.sync`` and ``<prefix>.maintenance``, each
served by workers of their own (deploy/processes.toml, ``make run``). The route is worked out when a
task is sent, from the sending app's prefix, so a test that points the app at a queue of its own
takes every route with it.
"""

from __future__ import annotations

from typing import Any

DESK = "desk"  # what a person is waiting on, against a deadline: submit, cancel, close, expiry
SYNC = "sync"  # mirroring Clear Street: positions and instructions
MAINTENANCE = "maintenance"  # the audit's verification and anchoring, health checks, notifications
KINDS = (DESK, SYNC, MAINTENANCE)

URGENCY: dict[str, str] = {
    "instructions.submit_batch": DESK,
    "instructions.execute_cancel": DESK,
    "positions.execute_close": DESK,
    "instructions.expire_batches": DESK,
    # The hand-off and the sweepers move desk work along: they must not queue behind a verification.
    "backoffice.dispatch_jobs": DESK,
    "instructions.resume_unfinished_work": DESK,
    "positions.resume_unfinished_closes": DESK,
    "positions.sync_positions": SYNC,
    "positions.sync_active_accounts": SYNC,
    "instructions.sync_instructions": SYNC,
    "instructions.poll_live_instructions": SYNC,
    "instructions.poll_all_instructions": SYNC,
    "audit.verify_chain": MAINTENANCE,
    "audit.checkpoint_chain": MAINTENANCE,
    "audit.resolve_interrupted_calls": MAINTENANCE,
    "backoffice.health_check": MAINTENANCE,
    # Telling people (e-mail, webhook) must never hold a desk worker: a slow mail server waits here.
    "notifications.deliver": MAINTENANCE,
    "notifications.post_webhook": MAINTENANCE,
    "notifications.watch": MAINTENANCE,
}


def queue_of(prefix: str, kind: str) -> str:
    return f"{prefix}.{kind}"


def all_queues(prefix: str) -> list[str]:
    """Every queue of one deployment: the prefix's own (unrouted tasks) and one per kind."""
    return [prefix, *(queue_of(prefix, kind) for kind in KINDS)]


def route(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **extra: Any) -> dict | None:
    """Celery's router (``CELERY_TASK_ROUTES``): a task's queue by its urgency; None leaves it on the
    default queue."""
    kind = URGENCY.get(name)
    if kind is None:
        return None
    from celery import current_app

    return {"queue": queue_of(current_app.conf.task_default_queue, kind)}
