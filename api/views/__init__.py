"""The REST API: HTTP in and out only. Every write is a call to the same service the pages call, and
every read goes through the same queries; permissions use the pages' role permissions.

``book``: accounts, positions, orders, syncs; ``requests``: instructions, batches, cancels, closes;
``audit``: the audit trail; ``tokens``: API tokens; ``base``: what they share.
"""

from api.views.audit import AuditEntryViewSet
from api.views.base import NotFoundView
from api.views.book import AccountViewSet, OrderViewSet, PositionViewSet, SyncRunViewSet
from api.views.requests import BatchViewSet, CancelRequestViewSet, CloseRequestViewSet, InstructionViewSet
from api.views.tokens import ApiTokenViewSet

__all__ = [
    "AccountViewSet",
    "ApiTokenViewSet",
    "AuditEntryViewSet",
    "BatchViewSet",
    "CancelRequestViewSet",
    "CloseRequestViewSet",
    "InstructionViewSet",
    "NotFoundView",
    "OrderViewSet",
    "PositionViewSet",
    "SyncRunViewSet",
]
