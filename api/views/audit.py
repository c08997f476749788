"""The audit trail over the API (compliance and administrators)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from api import filters as f
from api import pagination
from api import serializers as s
from api.views.base import (
    AUDIT,
    ApiViewMixin,
)
from backoffice.audit import queries as audit_queries
from backoffice.audit.forms import DEFAULT_PAGE_SIZE, AuditFilterForm
from backoffice.audit.models import AuditEntry

# --- audit -----------------------------------------------------------------------------------------


@extend_schema(tags=["audit"])
@extend_schema_view(
    list=extend_schema(
        parameters=[f.AuditQuery, pagination.PAGE_SIZE_PARAMETER],
        responses=OpenApiResponse(
            response=pagination.page_schema(
                {"type": "array", "items": {"$ref": "#/components/schemas/AuditEntry"}}
            ),
            description="Newest first; follow `next` for older rows, `previous` for newer.",
        ),
    ),
    retrieve=extend_schema(responses=s.AuditEntryDetailSerializer),
)
class AuditEntryViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    """The audit trail (compliance and administrators), with the audit page's filters."""

    serializer_class = s.AuditEntrySerializer
    queryset = AuditEntry.objects.all()
    permissions = {"list": AUDIT, "retrieve": AUDIT}
    lookup_value_regex = r"\d{1,18}"

    def list(self, request: Request) -> Response:
        query = request.query_params.copy()
        query.pop("per_page", None)
        query.pop("page_size", None)
        query["per_page"] = str(pagination.page_size_of(request))
        form = AuditFilterForm(query)
        if not form.is_valid():
            raise ValidationError({name: [str(e) for e in errors] for name, errors in form.errors.items()})
        page = audit_queries.audit_page(
            form.filters(),
            per_page=form.cleaned_data["per_page"] or DEFAULT_PAGE_SIZE,
            after=form.cleaned_data["after"],
            before=form.cleaned_data["before"],
        )
        base = request.build_absolute_uri()
        next_url = previous_url = None
        if page.next_cursor:
            next_url = replace_query_param(remove_query_param(base, "before"), "after", page.next_cursor)
        if page.prev_cursor:
            previous_url = replace_query_param(remove_query_param(base, "after"), "before", page.prev_cursor)
        return pagination.paginated(
            s.AuditEntrySerializer(page.entries, many=True).data, next_url, previous_url
        )

    def retrieve(self, request: Request, pk: str) -> Response:
        entry = audit_queries.entry(int(pk))
        if entry is None:
            raise NotFound("No such audit entry.")
        return Response(s.AuditEntryDetailSerializer(entry).data)
