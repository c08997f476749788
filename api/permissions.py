"""The pages' permissions, per action: the same role names (``backoffice.roles``) decide both."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from backoffice import roles


class RolePermission(BasePermission):
    """``view.permissions``: ``{action: permission}``; an action not listed needs ``VIEW_BOOK``."""

    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        needed = getattr(view, "permissions", {}).get(getattr(view, "action", None), roles.VIEW_BOOK)
        return needed is None or user.has_perm(needed)
