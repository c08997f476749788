"""The Celery app: Redis broker, one beat scheduler, tasks defined in each app's tasks.py."""

from __future__ import annotations

import logging
import os
import socket
import uuid

from celery import Celery
from celery.beat import PersistentScheduler

from backoffice.telemetry import celery_context

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings")

app = Celery("backoffice")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Logs carry the task's id and name, and the request id of the request that queued it.
celery_context.connect()

logger = logging.getLogger(__name__)


class SingleBeatScheduler(PersistentScheduler):
    """Beat that sends the schedule only while it holds the single-beat lease in Redis.

    Two beats would enqueue every scheduled task twice. Every beat process may run: the one holding
    the lease (``backoffice.beatlock``, taken and renewed atomically) sends, the others stand by and
    try to take it every few seconds, so when the active beat dies (even by SIGKILL) a standby takes
    over within the lease's ttl (``BEAT_LOCK_TTL_SECONDS``). The lease is renewed before every send.
    """

    def __init__(self, *args, **kwargs) -> None:
        import redis
        from django.conf import settings

        from backoffice.beatlock import Lease

        ttl = float(settings.BEAT_LOCK_TTL_SECONDS)
        # Celery may build the scheduler more than once in one beat process: the token is per process.
        token = f"{socket.gethostname()}:{os.getpid()}:{_PROCESS_NONCE}"
        self.lease = Lease(redis.Redis.from_url(settings.REDIS_URL), settings.BEAT_LOCK_KEY, token, ttl)
        # Renew well inside the ttl; a standby polls as often, so it takes over soon after the expiry.
        self.renew_every = ttl / 4
        self._active = False
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs) -> float:
        if not self.lease.acquire_or_renew():
            if self._active:
                logger.warning("beat lost the single-beat lease; standing by (sending nothing)")
            elif not getattr(self, "_announced_standby", False):
                holder = self.lease.holder()
                logger.info("beat standing by: another beat holds %s (%s)", self.lease.key, holder)
                self._announced_standby = True
            self._active = False
            return self.renew_every
        if not self._active:
            logger.info("beat holds the single-beat lease %s; sending the schedule", self.lease.key)
            self._active = True
        return min(super().tick(*args, **kwargs), self.renew_every)

    def apply_entry(self, entry, producer=None) -> None:
        # The last word before a send: a beat that stalled past its lease's ttl sends nothing.
        if not self.lease.held:
            logger.warning("beat's lease ran out before sending %s; skipped", entry.name)
            return
        super().apply_entry(entry, producer=producer)

    def close(self) -> None:
        try:
            if self._active:
                self.lease.release()
        finally:
            super().close()


_PROCESS_NONCE = uuid.uuid4().hex[:8]
