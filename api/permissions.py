"""The pages' permissions, per action: the same role names (``backoffice.roles``) decide both."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from backoffice import roles, secondfactor


class RolePermission(BasePermission):
    """``view.permissions``: ``{action: permission}``; an action not listed needs ``VIEW_BOOK``."""

    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        needed = getattr(view, "permissions", {}).get(getattr(view, "action", None), roles.VIEW_BOOK)
        return needed is None or user.has_perm(needed)


class FreshSecondFactor(BasePermission):
    """Approving and rejecting over a browser session need a second factor confirmed in the last
    ``STEP_UP_WINDOW_SECONDS``, as on the pages (``backoffice.secondfactor``). A request made with an
    API token passes: the token was minted from a verified session, and its use is audited."""

    message = "Confirm a fresh code from your authenticator (at /access/verify/) to approve or reject."
    code = "step_up_required"

    def has_permission(self, request, view) -> bool:
        if request.auth is not None and not isinstance(request.auth, str | bytes | dict):
            return True  # an API token (request.auth is the ApiToken row)
        return not secondfactor.enforced() or secondfactor.is_fresh(request._request)
