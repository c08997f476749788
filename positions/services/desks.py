"""The desk rule every write of a person passes: one acts only on the accounts of one's desks."""

from __future__ import annotations

from django.contrib.auth.models import User

from backoffice.roles import AnyUser
from backoffice.workflow import ActionRefused
from positions.models import Account


def require_account_on_desks(user: AnyUser | None, account: Account) -> None:
    """Refuse, as "not found", an account outside the person's desks (the pages answer 404 for it,
    so a request by URL or API learns no more than the pages show). The system acts for every desk."""
    if not isinstance(user, User):
        return
    if not Account.objects.visible_to(user).filter(pk=account.pk).exists():
        raise ActionRefused(f"Account {account.number} is not on your desks.", code="not_found")
