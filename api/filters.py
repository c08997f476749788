"""Query parameters of the list endpoints, validated: a bad value is a 400 naming the parameter."""

from __future__ import annotations

from typing import Any

from django import forms
from rest_framework import serializers

from backoffice.audit.forms import AuditFilterForm
from instructions.models import Batch, CancelRequest, InstructionStatus
from positions.models import CloseRequest, InstrumentType, PositionType, SyncRun
from positions.queries import SORTS, BookFilters


def bigint(**options: Any) -> serializers.IntegerField:
    """A whole number PostgreSQL's bigint holds (an id, an account number)."""
    return serializers.IntegerField(min_value=0, max_value=2**63 - 1, **options)


class PositionFilters(serializers.Serializer):
    account = serializers.ListField(
        child=bigint(), required=False, help_text="Account id; repeat for several"
    )
    instrument_type = serializers.ChoiceField(choices=InstrumentType.choices, required=False)
    position_type = serializers.ChoiceField(choices=PositionType.choices, required=False)
    q = serializers.CharField(required=False, max_length=32, help_text="Symbol prefix or underlying root")
    expiry_from = serializers.DateField(required=False)
    expiry_to = serializers.DateField(required=False)
    next_expiration = serializers.BooleanField(required=False, default=False)
    sort = serializers.ChoiceField(choices=list(SORTS), required=False, default="SYMBOL")
    dir = serializers.ChoiceField(choices=["asc", "desc"], required=False, default="asc")

    def validate(self, data: dict) -> dict:
        start, end = data.get("expiry_from"), data.get("expiry_to")
        if start and end and start > end:
            raise serializers.ValidationError(
                {"expiry_to": ["The end of the expiry range is before its start."]}
            )
        return data

    def filters(self) -> BookFilters:
        data = self.validated_data
        return BookFilters(
            account_ids=tuple(data.get("account") or ()),
            instrument_type=data.get("instrument_type", ""),
            position_type=data.get("position_type", ""),
            search=data.get("q", ""),
            expiry_from=data.get("expiry_from"),
            expiry_to=data.get("expiry_to"),
            next_expiration=data["next_expiration"],
            sort=data["sort"],
            descending=data["dir"] == "desc",
        )


class OrderFilters(serializers.Serializer):
    account = bigint(required=False)
    instrument_id = serializers.CharField(required=False, max_length=64)
    close_request = bigint(required=False)


class SyncRunFilters(serializers.Serializer):
    account = bigint(required=False)
    status = serializers.ChoiceField(choices=SyncRun.Status.choices, required=False)


class InstructionFilters(serializers.Serializer):
    account = bigint(required=False)
    status = serializers.ChoiceField(choices=InstructionStatus.choices, required=False)
    instrument_id = serializers.CharField(required=False, max_length=64)
    batch = bigint(required=False)


class BatchFilters(serializers.Serializer):
    account = bigint(required=False)
    status = serializers.ChoiceField(choices=Batch.Status.choices, required=False)


class CancelFilters(serializers.Serializer):
    account = bigint(required=False)
    status = serializers.ChoiceField(choices=CancelRequest.Status.choices, required=False)
    instruction = serializers.CharField(required=False, max_length=64)


class CloseFilters(serializers.Serializer):
    account = bigint(required=False)
    status = serializers.ChoiceField(choices=CloseRequest.Status.choices, required=False)


def _audit_choices(name: str) -> list[str]:
    field = AuditFilterForm.base_fields[name]
    assert isinstance(field, forms.ChoiceField)
    return [str(value) for value, _ in list(field.choices) if value]  # type: ignore[arg-type]


class AuditQuery(serializers.Serializer):
    """For the schema only: the audit page's own form (``AuditFilterForm``) validates these."""

    date_from = serializers.DateField(required=False, help_text="From this New York date (inclusive)")
    date_to = serializers.DateField(required=False, help_text="To this New York date (inclusive)")
    account = bigint(required=False)
    user = serializers.CharField(required=False, max_length=150, help_text="Username of the actor")
    endpoint = serializers.ChoiceField(choices=_audit_choices("endpoint"), required=False)
    path = serializers.CharField(required=False, max_length=500, help_text="Path starts with")
    method = serializers.ChoiceField(choices=_audit_choices("method"), required=False)
    status = serializers.ChoiceField(choices=_audit_choices("status"), required=False)
    request_id = serializers.CharField(required=False, max_length=200)
    subject_type = serializers.CharField(required=False, max_length=50)
    subject_id = serializers.CharField(required=False, max_length=100, help_text="Needs subject_type")
    kind = serializers.ChoiceField(choices=_audit_choices("kind"), required=False)
    after = serializers.CharField(required=False, help_text="Cursor: older rows (the `next` link)")
    before = serializers.CharField(required=False, help_text="Cursor: newer rows (the `previous` link)")
