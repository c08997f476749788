"""Rate limits: per API token (or per signed-in user on a session), and per address for anonymous calls.

Counts live in the ``api_throttle`` cache (Redis, shared by every web worker). If that cache cannot
be reached the request is let through and a warning logged: a rate limit must not take the API down.
"""

from __future__ import annotations

import logging

from django.core.cache import BaseCache, caches
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from api.models import ApiToken
from backoffice.addresses import client_address

logger = logging.getLogger(__name__)
CACHE_ALIAS = "api_throttle"


class _SharedCache:
    scope: str

    def __init__(self) -> None:
        super().__init__()
        self.cache: BaseCache = caches[CACHE_ALIAS]

    def get_rate(self) -> str | None:
        # Read at request time (DRF reads it at import), so a settings change applies at once.
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        return None if rate is None else str(rate)

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)  # type: ignore[misc]
        except Exception as exc:  # an unreachable cache must not fail the request
            logger.warning("API throttle cache unavailable, not limiting: %s", exc)
            return True


class TokenRateThrottle(_SharedCache, UserRateThrottle):
    """One budget per token; a session's budget is the user's."""

    scope = "user"

    def get_cache_key(self, request, view) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None
        if isinstance(request.auth, ApiToken):
            ident = f"token-{request.auth.pk}"
        else:
            ident = f"user-{request.user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AnonymousRateThrottle(_SharedCache, AnonRateThrottle):
    scope = "anon"

    def get_ident(self, request) -> str:
        # X-Forwarded-For only as far as our own proxies wrote it (TRUSTED_PROXY_COUNT).
        return client_address(request._request)
