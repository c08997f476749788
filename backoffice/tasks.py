"""Tasks of the platform itself."""

from __future__ import annotations

from celery import shared_task
from django.db import connection


@shared_task(name="backoffice.health_check")
def health_check(token: str) -> dict:
    """Round trip through broker, worker and database; echoes the token it was given."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        (one,) = cursor.fetchone()
    return {"token": token, "database": one == 1}


@shared_task(name="backoffice.dispatch_jobs")
def dispatch_jobs() -> int:
    """Hand on the jobs whose decision committed while the broker could not take them."""
    from backoffice import jobs

    return jobs.dispatch_waiting()
