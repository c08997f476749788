"""Every write of the API app: issuing and revoking tokens."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
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


def expiry_or_default(expires_at: datetime | None) -> datetime:
    """The expiry asked for, or ``API_TOKEN_DEFAULT_DAYS`` from now: no token lives for ever."""
    if expires_at is None:
        return timezone.now() + timedelta(days=settings.API_TOKEN_DEFAULT_DAYS)
    if expires_at <= timezone.now():
        raise ActionRefused("The expiry must be in the future.", code="invalid")
    return expires_at


def issue_token(
    user: AnyUser,
    name: str,
    *,
    expires_at: datetime | None = None,
    actor: User | None = None,
    approver: User | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for ``user`` (by themselves, or by ``actor`` once ``approver`` approved it);
    returns the row and the token, which is never stored or shown again."""
    if not isinstance(user, User) or not user.is_active:
        raise ActionRefused("Only an active user can hold an API token.", code="forbidden")
    name = name.strip()
    if not name:
        raise ActionRefused("Give the token a name that says what it is for.", code="invalid")
    expires_at = expiry_or_default(expires_at)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name[:100], key_hash=token_hash(raw), prefix=raw[:10], expires_at=expires_at
        )
        record_decision(
            action="issued_api_token",
            actor=actor or user,
            approver=approver,
            subject_type="api_token",
            subject_id=token.pk,
            to_state="active",
            after={
                "owner": user.get_username(),
                "name": token.name,
                "prefix": token.prefix,
                "expires_at": _iso(expires_at),
            },
        )
    return token, raw


def revoke_token(user: AnyUser, token_id: int) -> ApiToken:
    """The owner or an administrator revokes a token; it answers 401 from then on."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().select_related("user").filter(pk=token_id).first()
        if not isinstance(user, User) or token is None or (token.user_id != user.pk and not is_admin(user)):
            raise ActionRefused(f"API token #{token_id} does not exist.", code="not_found")
        if token.revoked_at is None:
            _revoke(token, actor=user, why="")
    return token


def revoke_all_of(owner: User, *, actor: User, why: str) -> int:
    """End every live token of ``owner`` (deactivated, or their password was reset); each is recorded."""
    with transaction.atomic():
        live = list(ApiToken.objects.select_for_update().filter(user=owner, revoked_at__isnull=True))
        for token in live:
            _revoke(token, actor=actor, why=why)
    return len(live)


def _revoke(token: ApiToken, *, actor: User, why: str) -> None:
    token.revoked_at = timezone.now()
    token.revoked_by = actor
    token.save(update_fields=["revoked_at", "revoked_by"])
    record_decision(
        action="revoked_api_token",
        actor=actor,
        subject_type="api_token",
        subject_id=token.pk,
        from_state="active",
        to_state="revoked",
        reason=why,
        before={"name": token.name, "prefix": token.prefix, "owner": token.user.get_username()},
    )


def record_first_use(token: ApiToken, address: str) -> bool:
    """Stamp a token's first use and put it on the chain; False when another request was first."""
    stamped = ApiToken.objects.filter(pk=token.pk, last_used_at__isnull=True).update(
        last_used_at=timezone.now()
    )
    if not stamped:
        return False
    record_decision(
        action="api_token_first_used",
        actor=token.user,
        subject_type="api_token",
        subject_id=token.pk,
        after={"owner": token.user.get_username(), "prefix": token.prefix, "address": address},
    )
    return True


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
