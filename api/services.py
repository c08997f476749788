"""Every write of the API app: issuing and revoking tokens."""

from __future__ import annotations

import secrets
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from api.models import ApiToken, token_hash
from backoffice import roles
from backoffice.audit.services import record_decision
from backoffice.roles import AnyUser
from backoffice.workflow import ActionRefused

TOKEN_PREFIX = "bo_"


def is_admin(user: AnyUser) -> bool:
    return isinstance(user, User) and (user.is_superuser or roles.ADMINS in roles.roles_of(user))


def issue_token(user: AnyUser, name: str, *, expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns the row and the token, which is never stored or shown again."""
    if not isinstance(user, User) or not user.is_active:
        raise ActionRefused("Only an active user can hold an API token.", code="forbidden")
    name = name.strip()
    if not name:
        raise ActionRefused("Give the token a name that says what it is for.", code="invalid")
    if expires_at is not None and expires_at <= timezone.now():
        raise ActionRefused("The expiry must be in the future.", code="invalid")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name[:100], key_hash=token_hash(raw), prefix=raw[:10], expires_at=expires_at
        )
        record_decision(
            action="issued_api_token",
            actor=user,
            subject_type="api_token",
            subject_id=token.pk,
            to_state="active",
            after={"name": token.name, "prefix": token.prefix, "expires_at": _iso(expires_at)},
        )
    return token, raw


def revoke_token(user: AnyUser, token_id: int) -> ApiToken:
    """The owner or an administrator revokes a token; it answers 401 from then on."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(pk=token_id).first()
        if not isinstance(user, User) or token is None or (token.user_id != user.pk and not is_admin(user)):
            raise ActionRefused(f"API token #{token_id} does not exist.", code="not_found")
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.revoked_by = user
            token.save(update_fields=["revoked_at", "revoked_by"])
            record_decision(
                action="revoked_api_token",
                actor=user,
                subject_type="api_token",
                subject_id=token.pk,
                from_state="active",
                to_state="revoked",
                before={"name": token.name, "prefix": token.prefix, "owner": token.user.get_username()},
            )
    return token


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
