"""What the navigation shows beside its links."""

from django.http import HttpRequest

from backoffice import roles


def nav_counts(request: HttpRequest) -> dict:
    """Work waiting for this checker (other people's requests only): two counts, checkers only."""
    user = request.user
    if not user.is_authenticated or not user.has_perm(roles.APPROVE_REQUESTS):
        return {}
    from instructions.models import Batch
    from positions.models import CloseRequest

    closes = CloseRequest.objects.filter(status=CloseRequest.Status.PENDING_APPROVAL)
    closes = closes.exclude(requested_by=user)
    batches = Batch.objects.filter(status=Batch.Status.PENDING_APPROVAL).exclude(created_by=user)
    return {"nav_counts": {"pending_closes": closes.count(), "pending_batches": batches.count()}}
