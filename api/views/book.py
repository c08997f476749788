"""The book over the API: followed accounts, positions, orders, syncs."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from api import filters as f
from api import pagination
from api import serializers as s
from api.views.base import (
    OPERATE,
    ApiViewMixin,
    body_of,
    filter_account,
)
from positions import queries as book_queries
from positions import services as positions
from positions.models import Account, Order, Position, SyncRun

# --- reference data and the book -------------------------------------------------------------------


@extend_schema(tags=["accounts"])
class AccountViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    """Clear Street accounts the desk follows."""

    serializer_class = s.AccountSerializer
    lookup_field = "number"
    lookup_url_kwarg = "account_id"
    lookup_value_regex = r"\d{1,18}"
    pagination_class = pagination.ordered_by("number")

    def get_queryset(self) -> QuerySet[Account]:
        return Account.objects.visible_to(self.request.user)


@extend_schema(tags=["positions"])
@extend_schema_view(
    list=extend_schema(
        parameters=[f.PositionFilters, pagination.CURSOR_PARAMETER, pagination.PAGE_SIZE_PARAMETER],
        responses=OpenApiResponse(
            response={
                "type": "object",
                "required": ["next", "previous", "results", "totals"],
                "properties": {
                    "next": {"type": "string", "nullable": True, "format": "uri"},
                    "previous": {"type": "string", "nullable": True, "format": "uri"},
                    "results": {"type": "array", "items": {"$ref": "#/components/schemas/Position"}},
                    "totals": {"$ref": "#/components/schemas/BookTotals"},
                },
            },
            description="One page of the book in the page's order; `totals` cover every matching row.",
        ),
    )
)
class PositionViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    """The position mirror, with the book page's filters and sorts (cursor-paged, stable)."""

    serializer_class = s.PositionSerializer
    lookup_value_regex = r"\d{1,18}"

    def get_queryset(self) -> QuerySet[Position]:
        return Position.objects.visible_to(self.request.user).select_related("account")

    def list(self, request: Request) -> Response:
        query = f.PositionFilters(data=request.query_params)
        query.is_valid(raise_exception=True)
        filters = query.filters()
        positions = book_queries.book(filters, request.user)
        page, next_url = pagination.book_page(request, positions, filters)
        totals = book_queries.totals(positions, filters, request.user)
        return pagination.paginated(
            s.PositionSerializer(page, many=True).data,
            next_url,
            totals=s.BookTotalsSerializer(totals).data,
        )


@extend_schema(tags=["positions"])
@extend_schema_view(list=extend_schema(parameters=[f.OrderFilters]))
class OrderViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    """Orders Clear Street generated for the desk's closes."""

    serializer_class = s.OrderSerializer
    pagination_class = pagination.ordered_by("id")
    lookup_value_regex = r"[^/]{1,64}"

    def get_queryset(self) -> QuerySet[Order]:
        qs = Order.objects.visible_to(self.request.user).select_related("account")
        if self.action != "list":
            return qs
        data = self.filters_from(f.OrderFilters)
        qs = filter_account(qs, data)
        if data.get("instrument_id"):
            qs = qs.filter(instrument_id=data["instrument_id"])
        if data.get("close_request") is not None:
            qs = qs.filter(close_request_id=data["close_request"])
        return qs


@extend_schema(tags=["sync"])
@extend_schema_view(list=extend_schema(parameters=[f.SyncRunFilters]))
class SyncRunViewSet(ApiViewMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Syncs of the mirror from Clear Street; POST queues one (joining a sync already under way)."""

    serializer_class = s.SyncRunSerializer
    pagination_class = pagination.ordered_by("-id")
    permissions = {"create": OPERATE}
    lookup_value_regex = r"\d{1,18}"

    def get_queryset(self) -> QuerySet[SyncRun]:
        qs = SyncRun.objects.visible_to(self.request.user).select_related("account", "requested_by")
        if self.action != "list":
            return qs
        data = self.filters_from(f.SyncRunFilters)
        qs = filter_account(qs, data)
        return qs.filter(status=data["status"]) if data.get("status") else qs

    @extend_schema(
        request=s.SyncRequestSerializer,
        responses={202: OpenApiResponse(s.SyncRunsSerializer, description="The runs queued or joined")},
    )
    def create(self, request: Request) -> Response:
        data = body_of(s.SyncRequestSerializer, request)
        named = [data["account_id"]] if data.get("account_id") is not None else []
        try:
            accounts = book_queries.sync_targets(named, request.user)
        except book_queries.UnknownAccounts as unknown:
            raise ValidationError({"account_id": [str(unknown)]}) from None
        runs = positions.request_syncs(accounts, user=request.user)
        return Response({"runs": s.SyncRunSerializer(runs, many=True).data}, status=status.HTTP_202_ACCEPTED)
