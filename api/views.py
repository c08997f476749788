"""The REST API: HTTP in and out only. Every write is a call to the same service the pages call, and
every read goes through the same queries; permissions use the pages' role permissions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from api import filters as f
from api import pagination
from api import serializers as s
from api import services as token_services
from api.models import ApiToken
from api.permissions import RolePermission
from backoffice import roles
from backoffice.audit import queries as audit_queries
from backoffice.audit.forms import DEFAULT_PAGE_SIZE, AuditFilterForm
from backoffice.audit.models import AuditEntry
from instructions import queries as instruction_queries
from instructions import services as instructions
from instructions.models import Batch, CancelRequest, Instruction
from positions import queries as book_queries
from positions import services as positions
from positions.models import Account, CloseRequest, Order, Position, SyncRun

VIEW, DRAFT, APPROVE, OPERATE, AUDIT = (
    roles.VIEW_BOOK,
    roles.DRAFT_REQUESTS,
    roles.APPROVE_REQUESTS,
    roles.OPERATE_SYSTEM,
    roles.VIEW_AUDIT,
)


class ApiViewMixin:
    """API views authenticate themselves (token or session), so the site's login redirect skips them."""

    permission_classes = [RolePermission]
    permissions: dict[str, str | None] = {}

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


def _body(serializer_class: type[serializers.Serializer], request: Request, **kwargs: Any) -> dict[str, Any]:
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _account(account_id: int, field: str = "account_id") -> Account:
    account = Account.objects.filter(number=account_id).first()
    if account is None:
        raise ValidationError({field: [f"Account {account_id} is not followed by the back-office."]})
    return account


def _filter_account(qs: QuerySet, data: dict, path: str = "account__number") -> QuerySet:
    return qs.filter(**{path: data["account"]}) if data.get("account") is not None else qs


# --- reference data and the book -------------------------------------------------------------------


@extend_schema(tags=["accounts"])
class AccountViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    """Clear Street accounts the desk follows."""

    serializer_class = s.AccountSerializer
    queryset = Account.objects.all()
    lookup_field = "number"
    lookup_url_kwarg = "account_id"
    lookup_value_regex = r"\d{1,18}"
    pagination_class = pagination.ordered_by("number")


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
    queryset = Position.objects.select_related("account")
    lookup_value_regex = r"\d{1,18}"

    def list(self, request: Request) -> Response:
        query = f.PositionFilters(data=request.query_params)
        query.is_valid(raise_exception=True)
        filters = query.filters()
        positions = book_queries.book(filters)
        page, next_url = pagination.book_page(request, positions, filters)
        totals = book_queries.totals(positions)
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
        qs = Order.objects.select_related("account")
        if self.action != "list":
            return qs
        data = self.filters_from(f.OrderFilters)
        qs = _filter_account(qs, data)
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
        qs = SyncRun.objects.select_related("account", "requested_by")
        if self.action != "list":
            return qs
        data = self.filters_from(f.SyncRunFilters)
        qs = _filter_account(qs, data)
        return qs.filter(status=data["status"]) if data.get("status") else qs

    @extend_schema(
        request=s.SyncRequestSerializer,
        responses={202: OpenApiResponse(s.SyncRunsSerializer, description="The runs queued or joined")},
    )
    def create(self, request: Request) -> Response:
        data = _body(s.SyncRequestSerializer, request)
        named = [data["account_id"]] if data.get("account_id") is not None else []
        try:
            accounts = book_queries.sync_targets(named)
        except book_queries.UnknownAccounts as unknown:
            raise ValidationError({"account_id": [str(unknown)]}) from None
        runs = positions.request_syncs(accounts, user=request.user)
        return Response({"runs": s.SyncRunSerializer(runs, many=True).data}, status=status.HTTP_202_ACCEPTED)


# --- instructions ----------------------------------------------------------------------------------


@extend_schema(tags=["instructions"])
@extend_schema_view(
    list=extend_schema(parameters=[f.InstructionFilters]),
    retrieve=extend_schema(responses=s.InstructionDetailSerializer),
)
class InstructionViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    """Clear Street's instructions as mirrored (whoever entered them); the detail carries the timeline."""

    pagination_class = pagination.ordered_by("id")
    lookup_value_regex = r"[^/]{1,64}"

    def get_serializer_class(self):
        return s.InstructionDetailSerializer if self.action == "retrieve" else s.InstructionSerializer

    def get_queryset(self) -> QuerySet[Instruction]:
        qs = Instruction.objects.select_related("account", "batch_row")
        if self.action != "list":
            return qs
        data = self.filters_from(f.InstructionFilters)
        qs = _filter_account(qs, data)
        if data.get("status"):
            qs = qs.filter(status=data["status"])
        if data.get("instrument_id"):
            qs = qs.filter(instrument_id=data["instrument_id"])
        if data.get("batch") is not None:
            qs = qs.filter(batch_row__batch_id=data["batch"])
        return qs

    def retrieve(self, request: Request, pk: str) -> Response:
        instruction = self.get_object()
        instruction.timeline = instruction_queries.timeline(instruction)
        return Response(s.InstructionDetailSerializer(instruction).data)


class _WorkflowViewSet(ApiViewMixin, viewsets.GenericViewSet):
    lookup_value_regex = r"\d{1,18}"

    def _check_exists(self, pk: str) -> None:
        if not self.get_queryset().filter(pk=pk).exists():
            raise NotFound("Nothing exists at this address.")

    def _answer(self, obj: Any, http_status: int = 200) -> Response:
        return Response(self.get_serializer_class()(self._reload(obj.pk)).data, status=http_status)

    def _reload(self, pk: int) -> Any:
        return self.get_queryset().get(pk=pk)


REJECT = extend_schema(request=s.RejectSerializer)
NO_BODY = extend_schema(request=None)


@extend_schema(tags=["batches"])
@extend_schema_view(
    list=extend_schema(parameters=[f.BatchFilters]),
    create=extend_schema(request=s.BatchCreateSerializer, responses={201: s.BatchSerializer}),
    update=extend_schema(request=s.BatchUpdateSerializer),
    partial_update=extend_schema(request=s.BatchPatchSerializer),
    submit_for_approval=NO_BODY,
    withdraw=NO_BODY,
    approve=extend_schema(request=s.ApproveSerializer),
    reject=REJECT,
    retry=NO_BODY,
)
class BatchViewSet(
    _WorkflowViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin
):
    """Instruction batches under maker-checker: a maker drafts and submits, another person approves."""

    serializer_class = s.BatchSerializer
    pagination_class = pagination.ordered_by("-id")
    permissions = {
        "create": DRAFT,
        "update": DRAFT,
        "partial_update": DRAFT,
        "submit_for_approval": DRAFT,
        "withdraw": DRAFT,
        "approve": APPROVE,
        "reject": APPROVE,
        "retry": OPERATE,
    }

    def get_queryset(self) -> QuerySet[Batch]:
        qs = Batch.objects.select_related("account", "created_by", "decided_by").prefetch_related(
            "rows__instruction"
        )
        if self.action != "list":
            return qs
        data = self.filters_from(f.BatchFilters)
        qs = _filter_account(qs, data)
        return qs.filter(status=data["status"]) if data.get("status") else qs

    @staticmethod
    def _specs(rows: list[dict]) -> list[instructions.RowSpec]:
        return [
            instructions.RowSpec(r["position_id"], r["instruction_type"], r["quantity"], r["override_reason"])
            for r in rows
        ]

    def create(self, request: Request) -> Response:
        data = _body(s.BatchCreateSerializer, request)
        account = _account(data["account_id"])
        batch = instructions.create_batch(request.user, account, self._specs(data["rows"]), note=data["note"])
        return self._answer(batch, status.HTTP_201_CREATED)

    def update(self, request: Request, pk: str) -> Response:
        return self._edit(request, pk, s.BatchUpdateSerializer)

    def partial_update(self, request: Request, pk: str) -> Response:
        return self._edit(request, pk, s.BatchPatchSerializer)

    def _edit(self, request: Request, pk: str, serializer_class) -> Response:
        self._check_exists(pk)
        data = _body(serializer_class, request)
        specs = self._specs(data["rows"]) if "rows" in data else None  # None: the note alone
        batch = instructions.update_batch(request.user, int(pk), specs, note=data.get("note"))
        return self._answer(batch)

    @action(detail=True, methods=["post"], url_path="submit-for-approval")
    def submit_for_approval(self, request: Request, pk: str) -> Response:
        return self._answer(instructions.submit_for_approval(request.user, int(pk)))

    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, pk: str) -> Response:
        return self._answer(instructions.withdraw_batch(request.user, int(pk)))

    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        self._check_exists(pk)
        data = _body(s.ApproveSerializer, request)
        batch = instructions.approve_batch(
            request.user, int(pk), version=data["version"], confirm_changes=data["confirm_changes"]
        )
        return self._answer(batch)

    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        self._check_exists(pk)
        data = _body(s.RejectSerializer, request)
        return self._answer(instructions.reject_batch(request.user, int(pk), data["reason"]))

    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str) -> Response:
        return self._answer(instructions.retry_batch(request.user, int(pk)))


@extend_schema(tags=["cancels"])
@extend_schema_view(
    list=extend_schema(parameters=[f.CancelFilters]),
    create=extend_schema(request=s.CancelCreateSerializer, responses={201: s.CancelRequestSerializer}),
    approve=NO_BODY,
    reject=REJECT,
    withdraw=NO_BODY,
)
class CancelRequestViewSet(
    _WorkflowViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin
):
    """Cancels of instructions already at Clear Street, under maker-checker."""

    serializer_class = s.CancelRequestSerializer
    pagination_class = pagination.ordered_by("-id")
    permissions = {"create": DRAFT, "withdraw": DRAFT, "approve": APPROVE, "reject": APPROVE}

    def get_queryset(self) -> QuerySet[CancelRequest]:
        qs = CancelRequest.objects.select_related("instruction__account", "requested_by", "decided_by")
        if self.action != "list":
            return qs
        data = self.filters_from(f.CancelFilters)
        qs = _filter_account(qs, data, "instruction__account__number")
        if data.get("status"):
            qs = qs.filter(status=data["status"])
        if data.get("instruction"):
            qs = qs.filter(instruction_id=data["instruction"])
        return qs

    def create(self, request: Request) -> Response:
        data = _body(s.CancelCreateSerializer, request)
        if not Instruction.objects.filter(pk=data["instruction"]).exists():
            raise ValidationError({"instruction": ["That instruction is not in the mirror."]})
        cancel = instructions.request_cancel(request.user, data["instruction"], note=data["note"])
        return self._answer(cancel, status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        return self._answer(instructions.approve_cancel(request.user, int(pk)))

    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        self._check_exists(pk)
        data = _body(s.RejectSerializer, request)
        return self._answer(instructions.reject_cancel(request.user, int(pk), data["reason"]))

    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, pk: str) -> Response:
        return self._answer(instructions.withdraw_cancel(request.user, int(pk)))


@extend_schema(tags=["closes"])
@extend_schema_view(
    list=extend_schema(parameters=[f.CloseFilters]),
    create=extend_schema(request=s.CloseCreateSerializer, responses={201: s.CloseRequestSerializer}),
    approve=NO_BODY,
    reject=REJECT,
    withdraw=NO_BODY,
)
class CloseRequestViewSet(
    _WorkflowViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin
):
    """Requests to close one position, or every position of an account, under maker-checker."""

    serializer_class = s.CloseRequestSerializer
    pagination_class = pagination.ordered_by("-id")
    permissions = {"create": DRAFT, "withdraw": DRAFT, "approve": APPROVE, "reject": APPROVE}

    def get_queryset(self) -> QuerySet[CloseRequest]:
        qs = CloseRequest.objects.select_related("account", "requested_by", "decided_by")
        if self.action != "list":
            return qs
        data = self.filters_from(f.CloseFilters)
        qs = _filter_account(qs, data)
        return qs.filter(status=data["status"]) if data.get("status") else qs

    def create(self, request: Request) -> Response:
        data = _body(s.CloseCreateSerializer, request)
        account = _account(data["account_id"])
        position = None
        if data.get("position_id") is not None:
            position = Position.objects.filter(pk=data["position_id"], account=account).first()
            if position is None:
                raise ValidationError({"position_id": ["That position is not in this account's book."]})
        close = positions.request_close(
            request.user, account, position=position, cancel_orders=data["cancel_orders"], note=data["note"]
        )
        return self._answer(close, status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        self._check_exists(pk)
        return self._answer(positions.approve_close(request.user, int(pk)))

    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        self._check_exists(pk)
        data = _body(s.RejectSerializer, request)
        return self._answer(positions.reject_close(request.user, int(pk), data["reason"]))

    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, pk: str) -> Response:
        self._check_exists(pk)
        return self._answer(positions.withdraw_close(request.user, int(pk)))


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


# --- API tokens ------------------------------------------------------------------------------------


@extend_schema(tags=["tokens"])
@extend_schema_view(
    create=extend_schema(
        request=s.TokenCreateSerializer,
        responses={201: OpenApiResponse(s.IssuedTokenSerializer, description="The token, shown this once")},
    ),
    destroy=extend_schema(responses={204: OpenApiResponse(description="Revoked")}),
)
class ApiTokenViewSet(
    ApiViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your API tokens (administrators see and revoke everyone's). Create one from a signed-in browser
    session or with `manage.py create_api_token`; a token cannot mint tokens."""

    serializer_class = s.ApiTokenSerializer
    pagination_class = pagination.ordered_by("-id")
    permissions = {"list": None, "retrieve": None, "create": None, "destroy": None}
    lookup_value_regex = r"\d{1,18}"

    def get_queryset(self) -> QuerySet[ApiToken]:
        qs = ApiToken.objects.select_related("user", "revoked_by")
        return qs if token_services.is_admin(self.request.user) else qs.filter(user=self.request.user)

    def create(self, request: Request) -> Response:
        if isinstance(request.auth, ApiToken):
            raise PermissionDenied(
                "An API token cannot create tokens: create one from a signed-in browser session "
                "or with `manage.py create_api_token`."
            )
        data = _body(s.TokenCreateSerializer, request)
        token, raw = token_services.issue_token(request.user, data["name"], expires_at=data["expires_at"])
        token.token = raw
        return Response(s.IssuedTokenSerializer(token).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, pk: str) -> Response:
        token_services.revoke_token(request.user, int(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- everything else under /api/ -------------------------------------------------------------------


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
