"""Instructions and the requests a second person decides: batches, cancels, closes."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from api import filters as f
from api import pagination
from api import serializers as s
from api.permissions import FreshSecondFactor, RolePermission
from api.views.base import (
    APPROVE,
    DRAFT,
    ApiViewMixin,
    body_of,
    filter_account,
    followed_account,
)
from instructions import queries as instruction_queries
from instructions import services as instructions
from instructions.models import Batch, CancelRequest, Instruction
from positions import services as positions
from positions.models import CloseRequest, Position

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
        qs = Instruction.objects.visible_to(self.request.user).select_related("account", "batch_row")
        if self.action != "list":
            return qs
        data = self.filters_from(f.InstructionFilters)
        qs = filter_account(qs, data)
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
# Approving and rejecting: the role, and over a browser session a second factor confirmed lately.
DECIDE = [RolePermission, FreshSecondFactor]
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
        "retry": APPROVE,  # a retry is a new approval
    }

    def get_queryset(self) -> QuerySet[Batch]:
        qs = (
            Batch.objects.visible_to(self.request.user)
            .select_related("account", "created_by", "decided_by")
            .prefetch_related("rows__instruction")
        )
        if self.action != "list":
            return qs
        data = self.filters_from(f.BatchFilters)
        qs = filter_account(qs, data)
        return qs.filter(status=data["status"]) if data.get("status") else qs

    @staticmethod
    def _specs(rows: list[dict]) -> list[instructions.RowSpec]:
        return [
            instructions.RowSpec(r["position_id"], r["instruction_type"], r["quantity"], r["override_reason"])
            for r in rows
        ]

    def create(self, request: Request) -> Response:
        data = body_of(s.BatchCreateSerializer, request)
        account = followed_account(data["account_id"], request.user)
        batch = instructions.create_batch(request.user, account, self._specs(data["rows"]), note=data["note"])
        return self._answer(batch, status.HTTP_201_CREATED)

    def update(self, request: Request, pk: str) -> Response:
        return self._edit(request, pk, s.BatchUpdateSerializer)

    def partial_update(self, request: Request, pk: str) -> Response:
        return self._edit(request, pk, s.BatchPatchSerializer)

    def _edit(self, request: Request, pk: str, serializer_class) -> Response:
        self._check_exists(pk)
        data = body_of(serializer_class, request)
        specs = self._specs(data["rows"]) if "rows" in data else None  # None: the note alone
        batch = instructions.update_batch(request.user, int(pk), specs, note=data.get("note"))
        return self._answer(batch)

    @action(detail=True, methods=["post"], url_path="submit-for-approval")
    def submit_for_approval(self, request: Request, pk: str) -> Response:
        return self._answer(instructions.submit_for_approval(request.user, int(pk)))

    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, pk: str) -> Response:
        return self._answer(instructions.withdraw_batch(request.user, int(pk)))

    @action(detail=True, methods=["post"], permission_classes=DECIDE)
    def approve(self, request: Request, pk: str) -> Response:
        self._check_exists(pk)
        data = body_of(s.ApproveSerializer, request)
        batch = instructions.approve_batch(
            request.user, int(pk), version=data["version"], confirm_changes=data["confirm_changes"]
        )
        return self._answer(batch)

    @action(detail=True, methods=["post"], permission_classes=DECIDE)
    def reject(self, request: Request, pk: str) -> Response:
        self._check_exists(pk)
        data = body_of(s.RejectSerializer, request)
        return self._answer(instructions.reject_batch(request.user, int(pk), data["reason"]))

    @action(detail=True, methods=["post"], permission_classes=DECIDE)
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
        qs = CancelRequest.objects.visible_to(self.request.user).select_related(
            "instruction__account", "requested_by", "decided_by"
        )
        if self.action != "list":
            return qs
        data = self.filters_from(f.CancelFilters)
        qs = filter_account(qs, data, "instruction__account__number")
        if data.get("status"):
            qs = qs.filter(status=data["status"])
        if data.get("instruction"):
            qs = qs.filter(instruction_id=data["instruction"])
        return qs

    def create(self, request: Request) -> Response:
        data = body_of(s.CancelCreateSerializer, request)
        if not Instruction.objects.visible_to(request.user).filter(pk=data["instruction"]).exists():
            raise ValidationError({"instruction": ["That instruction is not in the mirror."]})
        cancel = instructions.request_cancel(request.user, data["instruction"], note=data["note"])
        return self._answer(cancel, status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"], permission_classes=DECIDE)
    def approve(self, request: Request, pk: str) -> Response:
        return self._answer(instructions.approve_cancel(request.user, int(pk)))

    @action(detail=True, methods=["post"], permission_classes=DECIDE)
    def reject(self, request: Request, pk: str) -> Response:
        self._check_exists(pk)
        data = body_of(s.RejectSerializer, request)
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
        qs = CloseRequest.objects.visible_to(self.request.user).select_related(
            "account", "requested_by", "decided_by"
        )
        if self.action != "list":
            return qs
        data = self.filters_from(f.CloseFilters)
        qs = filter_account(qs, data)
        return qs.filter(status=data["status"]) if data.get("status") else qs

    def create(self, request: Request) -> Response:
        data = body_of(s.CloseCreateSerializer, request)
        account = followed_account(data["account_id"], request.user)
        position = None
        if data.get("position_id") is not None:
            position = Position.objects.filter(pk=data["position_id"], account=account).first()
            if position is None:
                raise ValidationError({"position_id": ["That position is not in this account's book."]})
        close = positions.request_close(
            request.user, account, position=position, cancel_orders=data["cancel_orders"], note=data["note"]
        )
        return self._answer(close, status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"], permission_classes=DECIDE)
    def approve(self, request: Request, pk: str) -> Response:
        self._check_exists(pk)
        return self._answer(positions.approve_close(request.user, int(pk)))

    @action(detail=True, methods=["post"], permission_classes=DECIDE)
    def reject(self, request: Request, pk: str) -> Response:
        self._check_exists(pk)
        data = body_of(s.RejectSerializer, request)
        return self._answer(positions.reject_close(request.user, int(pk), data["reason"]))

    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, pk: str) -> Response:
        self._check_exists(pk)
        return self._answer(positions.withdraw_close(request.user, int(pk)))
