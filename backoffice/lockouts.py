"""Sign-in lockouts as django-axes keeps them: which are in force, for the lockout page and the API.

A lockout is a username from one address (``AXES_LOCKOUT_PARAMETERS``) with ``AXES_FAILURE_LIMIT``
failures inside the cool-off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone


def _cooloff() -> timedelta:
    return timedelta(hours=float(settings.AXES_COOLOFF_TIME))


def _in_force() -> QuerySet[AccessAttempt]:
    rows: QuerySet[AccessAttempt] = AccessAttempt.objects.filter(
        failures_since_start__gte=settings.AXES_FAILURE_LIMIT, attempt_time__gte=timezone.now() - _cooloff()
    )
    return rows


@dataclass(frozen=True)
class Lockout:
    attempt: AccessAttempt
    locked_until: datetime


def in_force() -> list[Lockout]:
    return [Lockout(row, row.attempt_time + _cooloff()) for row in _in_force().order_by("-attempt_time")]


def username_locked(username: str) -> bool:
    """Whether a lockout of this username is in force from any address (a token of theirs waits too)."""
    return _in_force().filter(username=username).exists()
