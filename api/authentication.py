"""``Authorization: Bearer <token>`` (or ``Token <token>``) with a per-user API token."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import caches
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from api import services
from api.models import ApiToken, token_hash
from backoffice import lockouts
from backoffice.addresses import client_address

logger = logging.getLogger(__name__)

SCHEMES = ("bearer", "token")
# last_used_at is written at most this often per token, so a busy script does not write every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode("latin-1").lower() not in SCHEMES:
            return None  # not ours: the session may still authenticate the request
        address = client_address(request._request)
        # An address that sent too many wrong tokens waits, whatever it sends now: guessing is slow.
        wrong_tokens = InvalidTokenCounter(address)
        if wrong_tokens.exceeded():
            raise exceptions.Throttled(
                wrong_tokens.period, detail="Too many invalid API tokens from your address."
            )
        if len(header) != 2:
            wrong_tokens.add()
            raise exceptions.AuthenticationFailed("Send the header as 'Authorization: Bearer <token>'.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            wrong_tokens.add()
            raise exceptions.AuthenticationFailed("The API token is not valid.") from None
        token = ApiToken.objects.select_related("user").filter(key_hash=token_hash(raw)).first()
        if token is None:
            wrong_tokens.add()
            raise exceptions.AuthenticationFailed("The API token is not valid.")
        if token.is_revoked:
            raise exceptions.AuthenticationFailed("This API token was revoked; create a new one.")
        if token.is_expired:
            raise exceptions.AuthenticationFailed("This API token has expired; create a new one.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("The token's user is deactivated.")
        if lockouts.username_locked(token.user.get_username()):
            raise exceptions.AuthenticationFailed(
                "The token's user is locked out after failed sign-ins; an administrator can lift it."
            )
        now = timezone.now()
        if token.last_used_at is None:
            services.record_first_use(token, address)
            token.last_used_at = now
        elif now - token.last_used_at >= LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class InvalidTokenCounter:
    """Wrong tokens from one address in the current window of ``API_INVALID_TOKEN_RATE``, counted in
    the shared throttle cache. An unreachable cache counts nothing: a limit must not take the API down."""

    def __init__(self, address: str) -> None:
        count, _, unit = str(settings.API_INVALID_TOKEN_RATE).partition("/")
        self.limit = int(count)
        self.period = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit[:1] or "m"]
        window = int(time.time() // self.period)
        self.key = f"invalid-token-{address}-{window}"

    def exceeded(self) -> bool:
        try:
            return int(caches["api_throttle"].get(self.key, 0)) >= self.limit
        except Exception as exc:
            logger.warning("API throttle cache unavailable, not limiting wrong tokens: %s", exc)
            return False

    def add(self) -> None:
        try:
            cache = caches["api_throttle"]
            cache.add(self.key, 0, timeout=self.period * 2)
            cache.incr(self.key)
        except Exception as exc:
            logger.warning("API throttle cache unavailable, not counting a wrong token: %s", exc)


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A per-user API token: `Authorization: Bearer <token>` (or `Token <token>`).",
        }
