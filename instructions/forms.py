"""Forms of the instructions pages."""

from __future__ import annotations

from typing import Any

from django import forms

from instructions import queries
from instructions.models import Batch, InstructionType
from instructions.services import RowSpec
from positions.forms import ExportFilterForm, offer_accounts
from positions.models import Account


class BatchRowForm(forms.Form):
    position_id = forms.IntegerField(widget=forms.HiddenInput)
    instruction_type = forms.ChoiceField(choices=InstructionType.choices, label="Instruction")
    quantity = forms.IntegerField(min_value=1, label="Contracts")
    override_reason = forms.CharField(
        required=False,
        max_length=500,
        label="Override reason",
        help_text="Required to exercise an option that is out of the money.",
    )

    def spec(self) -> RowSpec:
        data = self.cleaned_data
        return RowSpec(
            data["position_id"], data["instruction_type"], data["quantity"], data["override_reason"]
        )


BatchRowFormSet = forms.formset_factory(
    BatchRowForm, extra=0, max_num=500, validate_max=True, can_delete=True
)


class BatchNoteForm(forms.Form):
    note = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), label="Note"
    )


class ApproveForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput)
    confirm_changes = forms.BooleanField(
        required=False, label="I have reviewed the position changes shown above"
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), label="Reason")


class BatchExportForm(forms.Form):
    """The batch list's tabs and status, as its export reads them; ``batch`` narrows to one batch."""

    scope = forms.ChoiceField(required=False, choices=[("open", "Open"), ("mine", "Mine"), ("all", "All")])
    status = forms.ChoiceField(required=False, choices=[("", "Any"), *Batch.Status.choices])
    batch = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)

    @property
    def status_filter(self) -> str:
        scope = self.cleaned_data.get("scope") or "open"
        return "open" if scope == "open" else self.cleaned_data.get("status") or ""

    @property
    def mine(self) -> bool:
        return self.cleaned_data.get("scope") == "mine"


class InstructionExportForm(ExportFilterForm):
    q = forms.CharField(required=False, max_length=32, label="Symbol")
    live = forms.BooleanField(required=False, label="In flight only")


class WorksheetForm(forms.Form):
    day = forms.DateField(required=False, label="Expiration", widget=forms.DateInput(attrs={"type": "date"}))
    account = forms.ChoiceField(required=False, label="Account")
    q = forms.CharField(required=False, max_length=32, label="Underlying")
    outcome = forms.ChoiceField(
        required=False, choices=[("", "Any outcome"), *queries.OUTCOME_CHOICES], label="Outcome now"
    )
    moneyness = forms.ChoiceField(
        required=False, choices=[("", "Any"), *queries.MONEYNESS_CHOICES], label="Moneyness"
    )
    attention = forms.BooleanField(required=False, label="Needs attention only")
    # Which group's rows to show opened (without scripts, a group's link reloads the page so).
    underlying = forms.CharField(required=False, max_length=32, widget=forms.HiddenInput)
    group_account = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    start = forms.IntegerField(required=False, min_value=0, max_value=10**7, widget=forms.HiddenInput)

    def filters(self) -> queries.RowFilters:
        data = self.cleaned_data
        return queries.RowFilters(
            underlying=data.get("q") or "",
            outcome=data.get("outcome") or "",
            moneyness=data.get("moneyness") or "",
            attention=bool(data.get("attention")),
        )

    def __init__(self, *args: Any, accounts: list[Account], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offer_accounts(self, accounts)
