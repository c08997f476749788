"""What every page shows of identity: open access requests for administrators, single sign-on."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from access import queries
from backoffice import roles


def identity(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    manages = user.is_authenticated and user.has_perm(roles.MANAGE_ACCESS)
    return {
        "access_pending": queries.pending_count() if manages else 0,
        "sso_enabled": bool(settings.OIDC_RP_CLIENT_ID),
    }
