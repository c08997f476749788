"""The four roles of the floor and what each may do.

Groups and their permissions are created by a data migration (``backoffice/migrations``) from
``ROLE_PERMISSIONS`` here, so the code and the database agree on one table.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest

# Whoever a request or a call is made by: a signed-in user, or nobody yet.
AnyUser = User | AnonymousUser

OPERATIONS = "operations"
SUPERVISORS = "supervisors"
COMPLIANCE = "compliance"
ADMINS = "admins"
ROLES = (OPERATIONS, SUPERVISORS, COMPLIANCE, ADMINS)

VIEW_BOOK = "backoffice.view_book"
DRAFT_REQUESTS = "backoffice.draft_requests"
APPROVE_REQUESTS = "backoffice.approve_requests"
VIEW_AUDIT = "backoffice.view_audit"
OPERATE_SYSTEM = "backoffice.operate_system"
MANAGE_ACCESS = "backoffice.manage_access"

ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    OPERATIONS: (VIEW_BOOK, DRAFT_REQUESTS, OPERATE_SYSTEM),
    SUPERVISORS: (VIEW_BOOK, APPROVE_REQUESTS, OPERATE_SYSTEM),
    COMPLIANCE: (VIEW_BOOK, VIEW_AUDIT),
    ADMINS: (VIEW_BOOK, VIEW_AUDIT, OPERATE_SYSTEM, MANAGE_ACCESS),
}
# Roles that see every account, whatever their desks (compliance reads, administrators manage).
FIRM_WIDE_ROLES = frozenset({COMPLIANCE, ADMINS})


ROLE_LABELS = {
    OPERATIONS: "Operations",
    SUPERVISORS: "Supervisor",
    COMPLIANCE: "Compliance",
    ADMINS: "Administrator",
}


def roles_of(user: AnyUser) -> list[str]:
    if not isinstance(user, User):
        return []
    cached: list[str] | None = getattr(user, "_backoffice_roles", None)
    if cached is None:
        cached = sorted(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        user._backoffice_roles = cached  # type: ignore[attr-defined]
    return cached


def sees_every_account(user: AnyUser) -> bool:
    """Compliance and administrators see the whole floor; everyone else sees their desks' accounts."""
    if not isinstance(user, User) or not user.is_active:
        return False
    return user.is_superuser or bool(FIRM_WIDE_ROLES.intersection(roles_of(user)))


def context_processor(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    roles = roles_of(user)
    return {
        "user_roles": [ROLE_LABELS[r] for r in roles],
        "can": {
            "view_book": user.has_perm(VIEW_BOOK),
            "draft": user.has_perm(DRAFT_REQUESTS),
            "approve": user.has_perm(APPROVE_REQUESTS),
            "audit": user.has_perm(VIEW_AUDIT),
            "operate": user.has_perm(OPERATE_SYSTEM),
            "admin": user.is_active and user.is_staff,
            "manage_access": user.has_perm(MANAGE_ACCESS),
        },
    }


ADMIN_MODEL_PERMISSIONS: dict[tuple[str, str], tuple[str, ...]] = {
    # People and groups are changed through the access pages (four eyes), never the stock admin.
    ("auth", "user"): ("view",),
    ("auth", "group"): ("view",),
    ("axes", "accessattempt"): ("view", "delete"),
    ("axes", "accessfailurelog"): ("view",),
    ("axes", "accesslog"): ("view",),
    ("positions", "account"): ("view", "add", "change"),
    ("positions", "desk"): ("view", "add", "change"),
}


def ensure_role_groups() -> None:
    """Create the role groups with their permissions if they are missing (idempotent).

    The migrations create them; this restores them where a database was emptied without
    re-running migrations (a flushed test database).
    """
    from django.contrib.auth.models import Group, Permission

    for role, permissions in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        codenames = [p.split(".", 1)[1] for p in permissions]
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="backoffice", codename__in=codenames)
        )
    admins = Group.objects.get(name=ADMINS)
    for (app_label, model), actions in ADMIN_MODEL_PERMISSIONS.items():
        admins.permissions.add(
            *Permission.objects.filter(
                content_type__app_label=app_label, codename__in=[f"{action}_{model}" for action in actions]
            )
        )
