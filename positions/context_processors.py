from django.http import HttpRequest

from backoffice import roles
from positions.models import CloseRequest


def nav_counts(request: HttpRequest) -> dict:
    """Work waiting for a checker, shown beside the navigation link (one query, checkers only)."""
    user = request.user
    if not user.is_authenticated or not user.has_perm(roles.APPROVE_REQUESTS):
        return {}
    pending = CloseRequest.objects.filter(status=CloseRequest.Status.PENDING_APPROVAL).exclude(
        requested_by=user
    )
    return {"nav_counts": {"pending_closes": pending.count()}}
