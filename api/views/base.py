"""What every API view shares: its own authentication, role permissions per action, UTC, bodies."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from django.contrib.auth.decorators import login_not_required
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.views import APIView

from api.permissions import RolePermission

if TYPE_CHECKING:
    from rest_framework.permissions import _PermissionClass
from backoffice import roles
from backoffice.roles import AnyUser
from positions.models import Account

VIEW, DRAFT, APPROVE, OPERATE, AUDIT = (
    roles.VIEW_BOOK,
    roles.DRAFT_REQUESTS,
    roles.APPROVE_REQUESTS,
    roles.OPERATE_SYSTEM,
    roles.VIEW_AUDIT,
)


class ApiViewMixin:
    """API views authenticate themselves (token or session), so the site's login redirect skips them."""

    permission_classes: Sequence[_PermissionClass] = [RolePermission]
    # action -> the permission it needs (None: any signed-in user); unlisted actions need VIEW_BOOK.
    permissions: dict[str | None, str | None] = {}

    @classmethod
    def as_view(cls, *args: Any, **kwargs: Any):
        return login_not_required(super().as_view(*args, **kwargs))  # type: ignore[misc]

    def dispatch(self, request, *args: Any, **kwargs: Any):
        # Machines get UTC, whatever time zone the pages show.
        with timezone.override(dt.UTC):
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]

    def filters_from(self, serializer_class: type[serializers.Serializer]) -> dict[str, Any]:
        query = serializer_class(data=self.request.query_params)  # type: ignore[attr-defined]
        query.is_valid(raise_exception=True)
        return query.validated_data


def body_of(
    serializer_class: type[serializers.Serializer], request: Request, **kwargs: Any
) -> dict[str, Any]:
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def followed_account(account_id: int, viewer: AnyUser, field: str = "account_id") -> Account:
    """The account, among the viewer's desks' (another desk's reads as not followed)."""
    account = Account.objects.visible_to(viewer).filter(number=account_id).first()
    if account is None:
        raise ValidationError({field: [f"Account {account_id} is not followed by the back-office."]})
    return account


QS = TypeVar("QS", bound=QuerySet)


def filter_account(qs: QS, data: dict, path: str = "account__number") -> QS:
    return qs.filter(**{path: data["account"]}) if data.get("account") is not None else qs


class NotFoundView(ApiViewMixin, APIView):
    """Any other address under /api/: a JSON 404 (after authentication), never an HTML page."""

    permissions = {None: None}

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.action = None
        super().initial(request, *args, **kwargs)
        raise NotFound(
            f"There is no API endpoint at {request.path}. The reference is at /api/docs/; "
            "note the trailing slash."
        )
