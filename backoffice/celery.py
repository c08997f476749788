"""The Celery app: Redis broker, one beat scheduler, tasks defined in each app's tasks.py."""

from __future__ import annotations

import os
import socket

from celery import Celery
from celery.beat import PersistentScheduler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings")

app = Celery("backoffice")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class AnotherBeatIsRunning(RuntimeError):
    pass


class SingleBeatScheduler(PersistentScheduler):
    """Beat that refuses to start while another beat holds the lock in Redis.

    Two beats would enqueue every scheduled task twice. The lock lives in the broker's Redis with a
    short expiry that this beat renews on every tick, so a beat that died releases it by itself.
    """

    lock_ttl_seconds = 60

    def __init__(self, *args, **kwargs) -> None:
        import redis
        from django.conf import settings

        self._redis = redis.Redis.from_url(settings.REDIS_URL)
        self.lock_key = f"backoffice:beat-lock:{settings.CELERY_TASK_DEFAULT_QUEUE}"
        # Celery may build the scheduler more than once in one beat process: the lock is per process.
        self._token = f"{socket.gethostname()}:{os.getpid()}"
        acquired = self._redis.set(self.lock_key, self._token, nx=True, ex=self.lock_ttl_seconds)
        holder = self._redis.get(self.lock_key)
        if not acquired and holder != self._token.encode():
            raise AnotherBeatIsRunning(
                f"another beat scheduler is running ({holder!r}); only one may run at a time"
            )
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs) -> float:
        if self._redis.get(self.lock_key) != self._token.encode():
            raise AnotherBeatIsRunning("lost the beat lock to another scheduler; stopping")
        self._redis.expire(self.lock_key, self.lock_ttl_seconds)
        return min(super().tick(*args, **kwargs), self.lock_ttl_seconds / 3)

    def close(self) -> None:
        try:
            if self._redis.get(self.lock_key) == self._token.encode():
                self._redis.delete(self.lock_key)
        finally:
            super().close()
