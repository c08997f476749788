"""Forms of the positions pages: the book's filters, and close requests."""

from __future__ import annotations

import csv
import io
from typing import Any

from django import forms

from positions.models import Account, InstrumentType, PositionType
from positions.queries import SORTS, BookFilters
from positions.services import PriceLine

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


class ExportFilterForm(forms.Form):
    """The filters of a list's export beyond the page's own: an account of the viewer's desks, a status."""

    account = forms.ChoiceField(required=False, label="Account")
    status = forms.ChoiceField(required=False, label="Status")

    def __init__(
        self, *args: Any, accounts: list[Account], statuses: list[tuple[str, str]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        offer_accounts(self, accounts)
        choice = self.fields["status"]
        assert isinstance(choice, forms.ChoiceField)
        choice.choices = [("", "Any"), *statuses]

    @property
    def account_number(self) -> int | None:
        account = self.cleaned_data.get("account")
        return int(account) if account else None


class CloseOrdersExportForm(ExportFilterForm):
    close = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1, label="Close request")


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


class PriceDayForm(forms.Form):
    day = forms.DateField(
        required=False, label="Business date", widget=forms.DateInput(attrs={"type": "date"})
    )


class OfficialCloseForm(forms.Form):
    symbol = forms.CharField(max_length=16, label="Underlying")
    close = forms.CharField(max_length=32, label="Official close")
    business_date = forms.DateField(label="Business date", widget=forms.DateInput(attrs={"type": "date"}))

    def line(self) -> PriceLine:
        data = self.cleaned_data
        return PriceLine(data["symbol"], data["close"], data["business_date"].isoformat())


MAX_UPLOAD_BYTES = 1024 * 1024


class PriceUploadForm(forms.Form):
    file = forms.FileField(label="CSV of symbol, close, date", help_text="A header row is optional.")

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError("The file is larger than 1 MB; split it.")
        try:
            self._text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text (save it as CSV).") from None
        return upload

    def lines(self) -> list[PriceLine]:
        rows = [row for row in csv.reader(io.StringIO(self._text)) if any(cell.strip() for cell in row)]
        if rows and rows[0] and rows[0][0].strip().lower() == "symbol":
            rows = rows[1:]
        return [PriceLine(*[*row, "", "", ""][:3]) for row in rows]
