"""Failed sign-ins per address, across usernames: one client cannot try name after name.

django-axes locks a username from one address; this counts every failure from an address in a
window of ``LOGIN_ADDRESS_WINDOW_SECONDS`` and refuses further sign-ins from it past
``LOGIN_ADDRESS_FAILURE_LIMIT``. Counted in the shared throttle cache (Redis); an unreachable
cache limits nothing rather than lock the floor out.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import caches

logger = logging.getLogger(__name__)


def _key(address: str) -> str:
    window = int(time.time() // settings.LOGIN_ADDRESS_WINDOW_SECONDS)
    return f"signin-failures-{address}-{window}"


def address_blocked(address: str) -> bool:
    try:
        return int(caches["api_throttle"].get(_key(address), 0)) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT
    except Exception as exc:
        logger.warning("throttle cache unavailable, not limiting sign-ins per address: %s", exc)
        return False


def count_failure(address: str) -> None:
    try:
        cache = caches["api_throttle"]
        key = _key(address)
        cache.add(key, 0, timeout=settings.LOGIN_ADDRESS_WINDOW_SECONDS * 2)
        cache.incr(key)
    except Exception as exc:
        logger.warning("throttle cache unavailable, not counting a failed sign-in: %s", exc)
