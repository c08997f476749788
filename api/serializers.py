"""What the API reads and writes. Reads mirror the models (the wire's field names); writes carry only
what a person would type on the page, and the services decide the rest."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from api.models import ApiToken
from backoffice.audit.models import BODY_FIELDS, CHAIN_FIELDS, SUMMARY_FIELDS, AuditEntry
from backoffice.fields import WireDecimalField
from instructions.models import Batch, BatchRow, CancelRequest, Instruction, InstructionType
from positions.models import ORDER_WIRE_FIELDS, Account, CloseRequest, Order, Position, SyncRun


class WireDecimal(serializers.DecimalField):
    """An exact decimal as a string, with the scale Clear Street sent (no rounding)."""

    def __init__(self, **kwargs):
        kwargs.pop("max_digits", None)
        kwargs.pop("decimal_places", None)
        super().__init__(max_digits=None, decimal_places=None, **kwargs)


class ModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        WireDecimalField: WireDecimal,
    }


def username_field() -> serializers.SlugRelatedField:
    return serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)


def account_id_field() -> serializers.IntegerField:
    return serializers.IntegerField(
        source="account.number", read_only=True, help_text="Clear Street account id"
    )


# --- read side -----------------------------------------------------------------------------------


class AccountSerializer(ModelSerializer):
    # The model calls it ``number`` (``account_id`` elsewhere is a foreign key); the wire name stays.
    account_id = serializers.IntegerField(
        source="number", min_value=-(2**63), max_value=2**63 - 1, help_text="Clear Street account id"
    )

    class Meta:
        model = Account
        fields = ["account_id", "name", "active", "created_at", "snapshot_as_of"]


class PositionSerializer(ModelSerializer):
    account_id = account_id_field()
    last_sync_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Position
        fields = [
            "id",
            "account_id",
            "instrument_id",
            "symbol",
            "instrument_type",
            "position_type",
            "quantity",
            "available_quantity",
            "market_value",
            "avg_price",
            "closing_price",
            "closing_price_date",
            "cost_basis",
            "daily_realized_pnl",
            "daily_unrealized_pnl",
            "daily_unrealized_pnl_pct",
            "instrument_price",
            "underlying_instrument_id",
            "unrealized_pnl",
            "unrealized_pnl_pct",
            "underlying_root",
            "expiration_date",
            "put_call",
            "strike",
            "first_seen_at",
            "updated_at",
            "last_sync_id",
        ]


class BookTotalsSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    market_value = WireDecimal()
    unrealized_pnl = WireDecimal()
    daily_unrealized_pnl = WireDecimal()


class OrderSerializer(ModelSerializer):
    account_id = account_id_field()
    close_request_id = serializers.IntegerField(read_only=True, allow_null=True)
    details = serializers.JSONField(read_only=True)

    class Meta:
        model = Order
        fields = ["id", "account_id", "close_request_id", *ORDER_WIRE_FIELDS, "details", "received_at"]


class SyncRunSerializer(ModelSerializer):
    account_id = account_id_field()
    requested_by = username_field()

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "account_id",
            "status",
            "trigger",
            "requested_by",
            "requested_at",
            "started_at",
            "finished_at",
            "pages",
            "total_pages",
            "rows_received",
            "rows_added",
            "rows_changed",
            "rows_removed",
            "rows_skipped",
            "error",
        ]


class SyncRunsSerializer(serializers.Serializer):
    runs = SyncRunSerializer(many=True)


class InstructionSerializer(ModelSerializer):
    account_id = account_id_field()
    batch_id = serializers.IntegerField(source="batch_row.batch_id", read_only=True, allow_null=True)

    class Meta:
        model = Instruction
        fields = [
            "id",
            "account_id",
            "instruction_id",
            "instruction_type",
            "instrument_id",
            "symbol",
            "quantity",
            "status",
            "accepted_quantity",
            "rejection_reason",
            "created_at",
            "updated_at",
            "batch_id",
            "first_seen_at",
            "last_seen_at",
        ]


class TimelineEventSerializer(serializers.Serializer):
    """One step in the instruction's life, as the instruction page shows it."""

    at = serializers.DateTimeField(allow_null=True)
    what = serializers.CharField(help_text="e.g. 'batch #12 approved', 'status SENT → ACCEPTED'")
    who = serializers.CharField(allow_blank=True, help_text="A username, 'system' or 'Clear Street (sync)'")
    detail = serializers.CharField(allow_blank=True)
    request_id = serializers.CharField(allow_blank=True, allow_null=True)


class InstructionDetailSerializer(InstructionSerializer):
    timeline = TimelineEventSerializer(many=True, read_only=True)

    class Meta(InstructionSerializer.Meta):
        fields = [*InstructionSerializer.Meta.fields, "timeline"]


class BatchRowSerializer(ModelSerializer):
    position_id = serializers.IntegerField(read_only=True, allow_null=True)
    instruction = serializers.SerializerMethodField(help_text="The mirrored instruction's id, once sent")

    class Meta:
        model = BatchRow
        fields = [
            "id",
            "instruction_type",
            "position_id",
            "instrument_id",
            "symbol",
            "quantity",
            "instruction_id",
            "override_reason",
            "drafted_position",
            "status",
            "rejection_reason",
            "instruction",
        ]

    def get_instruction(self, row: BatchRow) -> str | None:
        instruction = getattr(row, "instruction", None)
        return instruction.pk if instruction is not None else None


class BatchSerializer(ModelSerializer):
    account_id = account_id_field()
    created_by = username_field()
    decided_by = username_field()
    rows = BatchRowSerializer(many=True, read_only=True)

    class Meta:
        model = Batch
        fields = [
            "id",
            "account_id",
            "business_date",
            "status",
            "version",
            "note",
            "created_by",
            "created_at",
            "submitted_for_approval_at",
            "decided_by",
            "decided_at",
            "decision_reason",
            "submit_attempts",
            "submitted_at",
            "request_id",
            "last_error",
            "rows",
        ]


class CancelRequestSerializer(ModelSerializer):
    account_id = serializers.IntegerField(source="instruction.account.number", read_only=True)
    instruction = serializers.CharField(source="instruction_id", read_only=True)
    requested_by = username_field()
    decided_by = username_field()

    class Meta:
        model = CancelRequest
        fields = [
            "id",
            "instruction",
            "account_id",
            "status",
            "note",
            "requested_by",
            "requested_at",
            "decided_by",
            "decided_at",
            "decision_reason",
            "request_id",
            "error",
        ]


class CloseRequestSerializer(ModelSerializer):
    account_id = account_id_field()
    requested_by = username_field()
    decided_by = username_field()
    closes_all = serializers.BooleanField(read_only=True)

    class Meta:
        model = CloseRequest
        fields = [
            "id",
            "account_id",
            "closes_all",
            "instrument_id",
            "symbol",
            "quantity_at_request",
            "cancel_orders",
            "note",
            "status",
            "requested_by",
            "requested_at",
            "decided_by",
            "decided_at",
            "decision_reason",
            "submitted_at",
            "request_id",
            "error",
        ]


AUDIT_LIST_FIELDS = [*SUMMARY_FIELDS, *CHAIN_FIELDS]
AUDIT_BODY_FIELDS = list(BODY_FIELDS)


class AuditEntrySerializer(ModelSerializer):
    class Meta:
        model = AuditEntry
        fields = AUDIT_LIST_FIELDS


class AuditEntryDetailSerializer(ModelSerializer):
    query = serializers.JSONField(allow_null=True)
    request_headers = serializers.JSONField(allow_null=True)
    request_body = serializers.JSONField(allow_null=True)
    response_body = serializers.JSONField(allow_null=True)
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)

    class Meta:
        model = AuditEntry
        fields = [*AUDIT_LIST_FIELDS, *AUDIT_BODY_FIELDS]


class ApiTokenSerializer(ModelSerializer):
    user: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    revoked_by = username_field()
    active = serializers.BooleanField(source="is_usable", read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "user",
            "name",
            "prefix",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "revoked_by",
            "active",
        ]


class IssuedTokenSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="Shown once, now; only its hash is kept.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


# --- write side ----------------------------------------------------------------------------------


def note_field() -> serializers.CharField:
    return serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


def max_batch_rows() -> int:
    return settings.API_MAX_BATCH_ROWS


class RowInputSerializer(serializers.Serializer):
    position_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1, help_text="The position's `id`")
    instruction_type = serializers.ChoiceField(choices=InstructionType.choices)
    quantity = serializers.IntegerField(help_text="Whole contracts")
    override_reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        default="",
        help_text="Needed to exercise an option that is out of the money",
    )


class RowsField(serializers.ListField):
    child = RowInputSerializer()

    def __init__(self, **kwargs):
        super().__init__(min_length=1, max_length=None, **kwargs)

    def to_internal_value(self, data):
        limit = max_batch_rows()
        if isinstance(data, list) and len(data) > limit:
            raise serializers.ValidationError(f"A batch holds at most {limit} rows; split it.")
        return super().to_internal_value(data)


class BatchCreateSerializer(serializers.Serializer):
    account_id = serializers.IntegerField(
        min_value=0, max_value=2**63 - 1, help_text="Clear Street account id"
    )
    note = note_field()
    rows = RowsField(help_text="One row per contract (at most API_MAX_BATCH_ROWS, 500 by default)")


class BatchUpdateSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    rows = RowsField(help_text="The batch's rows, replacing the current ones")


class BatchPatchSerializer(BatchUpdateSerializer):
    rows = RowsField(required=False, help_text="The batch's rows, replacing the current ones")


class ApproveSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        min_value=1,
        max_value=2**31 - 1,
        help_text="The batch version you reviewed; a later edit refuses (409)",
    )
    confirm_changes = serializers.BooleanField(
        default=False, help_text="Approve although positions moved since drafting"
    )


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, allow_blank=True, help_text="The maker reads it")


class CancelCreateSerializer(serializers.Serializer):
    instruction = serializers.CharField(max_length=64, help_text="The instruction's `id` (Clear Street's)")
    note = note_field()


class CloseCreateSerializer(serializers.Serializer):
    account_id = serializers.IntegerField(
        min_value=0, max_value=2**63 - 1, help_text="Clear Street account id"
    )
    position_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        max_value=2**63 - 1,
        help_text="The position to close; omit (or null) to close every position of the account",
    )
    cancel_orders = serializers.BooleanField(default=False)
    note = note_field()


class SyncRequestSerializer(serializers.Serializer):
    account_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=0,
        max_value=2**63 - 1,
        help_text="Omit to sync every active account",
    )


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="When the token stops working; empty: API_TOKEN_DEFAULT_DAYS (90) from now. No token "
        "lives for ever.",
    )
