"""Single sign-on with OpenID Connect (mozilla-django-oidc), roles and desks from the provider's claims.

A person signing in through the provider is the user named by their e-mail address (created on
first sign-in). Their roles and desks follow the claims named by ``OIDC_ROLE_CLAIM`` and
``OIDC_DESK_CLAIM``, translated by ``OIDC_ROLE_MAP`` and ``OIDC_DESK_MAP``: the provider's own
approval process stands where a second administrator would. Local accounts (with a password of
their own) are never signed in through the provider: they stay for break-glass use.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import SuspiciousOperation
from django.db.models import QuerySet
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from access import services
from backoffice.workflow import ActionRefused

logger = logging.getLogger(__name__)


def _values(claims: dict[str, Any], name: str) -> list[str]:
    value = claims.get(name) or []
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return [str(item) for item in value] if isinstance(value, list) else []


def mapped(claims: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The roles and desk names the claims grant, through the settings' maps (unmapped values give
    nothing)."""
    role_map: dict[str, str] = settings.OIDC_ROLE_MAP
    desk_map: dict[str, str] = settings.OIDC_DESK_MAP
    role_names = sorted({role_map[v] for v in _values(claims, settings.OIDC_ROLE_CLAIM) if v in role_map})
    desk_names = sorted({desk_map[v] for v in _values(claims, settings.OIDC_DESK_CLAIM) if v in desk_map})
    return role_names, desk_names


class ClaimsMappingBackend(OIDCAuthenticationBackend):
    def filter_users_by_claims(self, claims: dict[str, Any]) -> QuerySet[User]:
        email = str(claims.get("email") or "")
        if not email:
            return User.objects.none()
        users = User.objects.filter(username__iexact=email)
        if any(user.has_usable_password() for user in users):
            raise SuspiciousOperation(
                "A local account holds this name; it does not sign in through the provider."
            )
        return users

    def create_user(self, claims: dict[str, Any]) -> User:
        email = str(claims["email"])
        user = User.objects.create_user(email, email=email)  # no password: the provider vouches
        return self.update_user(user, claims)

    def update_user(self, user: User, claims: dict[str, Any]) -> User:
        role_names, desk_names = mapped(claims)
        try:
            services.follow_provider(
                user, role_names=role_names, desk_names=desk_names, issuer=self._issuer()
            )
        except ActionRefused as exc:
            logger.warning("single sign-on refused for %s: %s", user.get_username(), exc.message)
            raise SuspiciousOperation(exc.message) from exc
        return user

    def _issuer(self) -> str:
        return (
            str(self.OIDC_OP_TOKEN_ENDPOINT).split("/", 3)[2] if "//" in self.OIDC_OP_TOKEN_ENDPOINT else ""
        )
