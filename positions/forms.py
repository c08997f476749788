"""Forms of the positions pages: the book's filters, and close requests."""

from __future__ import annotations

from typing import Any

from django import forms

from positions.models import Account, InstrumentType, PositionType
from positions.queries import SORTS, BookFilters

PAGE_SIZES = (25, 50, 100, 250, 500)


def offer_accounts(form: forms.Form, accounts: list[Account], field: str = "account") -> None:
    """Let ``form``'s account filter choose among ``accounts`` (or all of them), by their number."""
    choice = form.fields[field]
    assert isinstance(choice, forms.ChoiceField)
    choice.choices = [("", "All accounts")] + [(str(a.number), str(a)) for a in accounts]


class BookFilterForm(forms.Form):
    account = forms.ChoiceField(required=False, label="Account")
    instrument_type = forms.ChoiceField(
        required=False, choices=[("", "All types"), *InstrumentType.choices], label="Type"
    )
    position_type = forms.ChoiceField(
        required=False, choices=[("", "All sides"), *PositionType.choices], label="Position"
    )
    q = forms.CharField(required=False, max_length=32, label="Symbol or underlying")
    expiry_from = forms.DateField(
        required=False, label="Expiring from", widget=forms.DateInput(attrs={"type": "date"})
    )
    expiry_to = forms.DateField(required=False, label="to", widget=forms.DateInput(attrs={"type": "date"}))
    next_expiration = forms.BooleanField(required=False, label="Next expiration only")
    sort = forms.ChoiceField(required=False, choices=[(k, k.replace("_", " ").title()) for k in SORTS])
    dir = forms.ChoiceField(required=False, choices=[("asc", "Ascending"), ("desc", "Descending")])
    page_size = forms.TypedChoiceField(
        required=False, coerce=int, choices=[(n, n) for n in PAGE_SIZES], empty_value=None, label="Rows"
    )

    def __init__(self, *args: Any, accounts: list[Account], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offer_accounts(self, accounts)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("expiry_from"), data.get("expiry_to")
        if start and end and start > end:
            self.add_error("expiry_to", "The end of the expiry range is before its start.")
        return data

    def filters(self) -> BookFilters:
        """The filters to apply: the valid ones; an invalid field is ignored and reported on the form."""
        data = self.cleaned_data if self.is_bound else {}
        account = data.get("account")
        return BookFilters(
            account_ids=(int(account),) if account else (),
            instrument_type=data.get("instrument_type") or "",
            position_type=data.get("position_type") or "",
            search=data.get("q") or "",
            expiry_from=data.get("expiry_from"),
            expiry_to=data.get("expiry_to"),
            next_expiration=bool(data.get("next_expiration")),
            sort=data.get("sort") or "SYMBOL",
            descending=data.get("dir") == "desc",
        )

    @property
    def rows_per_page(self) -> int:
        return (self.cleaned_data.get("page_size") if self.is_bound else None) or 50


class CloseRequestForm(forms.Form):
    cancel_orders = forms.BooleanField(
        required=False,
        label="Cancel open orders first",
        help_text="Clear Street cancels the open orders before closing.",
    )
    note = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), label="Note"
    )


class RejectForm(forms.Form):
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), label="Reason")
