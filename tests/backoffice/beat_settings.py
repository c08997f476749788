"""The production settings plus one frequent entry, so a test sees a beat send within a second.

Only the schedule differs: the scheduler, its lease and their settings are the project's own.
"""

from backoffice.settings import *  # noqa: F403
from backoffice.settings import CELERY_BEAT_SCHEDULE

CELERY_BEAT_SCHEDULE = {
    **CELERY_BEAT_SCHEDULE,
    "test-heartbeat": {"task": "backoffice.health_check", "schedule": 0.5, "args": ("beat",)},
}
