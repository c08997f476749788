"""The bell's count, for every page's navigation."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from notifications import queries


def bell(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    if not user.is_authenticated or not user.is_active:
        return {}
    return {"notifications_unread": queries.unread_count(user)}
