"""The audit list's filters. Anything a person can type gives a form error, never a 500."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.http import QueryDict

from backoffice.audit.links import subject_types
from backoffice.audit.models import AuditEntry
from backoffice.audit.queries import NO_RESPONSE, STATUS_CLASSES, AuditFilters, Cursor
from backoffice.audit.services import ENDPOINT_TEMPLATES

PAGE_SIZES = (25, 50, 100, 200)
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50
_BIGINT_MAX = 2**63 - 1


def _market_midnight(day: dt.date) -> dt.datetime:
    # Dates on the desk are New York dates: "the 14th" starts at midnight ET, not UTC.
    return dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(settings.MARKET_TIME_ZONE))


class AuditFilterForm(forms.Form):
    date_from = forms.DateField(
        required=False, label="From (ET)", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(required=False, label="To (ET)", widget=forms.DateInput(attrs={"type": "date"}))
    account = forms.IntegerField(required=False, min_value=0, max_value=_BIGINT_MAX, label="Account id")
    user = forms.CharField(required=False, max_length=150, label="User")
    endpoint = forms.ChoiceField(
        required=False, choices=[("", "Any")] + [(t, t) for t in ENDPOINT_TEMPLATES], label="Endpoint"
    )
    path = forms.CharField(required=False, max_length=500, label="Path starts with")
    method = forms.ChoiceField(
        required=False, choices=[("", "Any")] + [(m, m) for m in ("GET", "POST", "PUT", "PATCH", "DELETE")]
    )
    status = forms.ChoiceField(
        required=False,
        label="HTTP status",
        choices=[("", "Any")]
        + [(c, c) for c in STATUS_CLASSES]
        + [(NO_RESPONSE, "No response (network error)")],
    )
    request_id = forms.CharField(required=False, max_length=200, label="Request id")
    subject_type = forms.CharField(
        required=False,
        max_length=50,
        label="Linked to",
        widget=forms.TextInput(attrs={"list": "audit-subject-types"}),
    )
    subject_id = forms.CharField(required=False, max_length=100, label="Linked id")
    kind = forms.ChoiceField(required=False, choices=[("", "Any"), *AuditEntry.Kind.choices])
    per_page = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_PAGE_SIZE,
        label="Rows per page",
        widget=forms.NumberInput(attrs={"list": "audit-page-sizes"}),
    )
    after = forms.CharField(required=False, widget=forms.HiddenInput)
    before = forms.CharField(required=False, widget=forms.HiddenInput)

    @property
    def subject_types(self) -> list[str]:
        return subject_types()

    def clean_after(self) -> Cursor | None:
        return self._cursor("after")

    def clean_before(self) -> Cursor | None:
        return self._cursor("before")

    def _cursor(self, name: str) -> Cursor | None:
        token = self.cleaned_data.get(name) or ""
        if not token:
            return None
        try:
            return Cursor.decode(token)
        except ValueError:
            raise forms.ValidationError(
                "This page link is not valid; start again from the first page."
            ) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        for name, day in (("date_from", start), ("date_to", end)):
            if day and not 1900 <= day.year <= 2999:
                self.add_error(name, "Give a date between 1900 and 2999.")
                start = end = None
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        if data.get("subject_id") and not data.get("subject_type"):
            self.add_error("subject_type", "Say what the id belongs to (batch, cancel_request, ...).")
        return data

    def filters(self) -> AuditFilters:
        data = self.cleaned_data
        since = _market_midnight(data["date_from"]) if data.get("date_from") else None
        until = _market_midnight(data["date_to"] + dt.timedelta(days=1)) if data.get("date_to") else None
        return AuditFilters(
            since=since,
            until=until,
            account_id=data.get("account"),
            username=(data.get("user") or "").strip(),
            endpoint=data.get("endpoint") or "",
            path_prefix=(data.get("path") or "").strip(),
            method=data.get("method") or "",
            status_class=data.get("status") or "",
            request_id=(data.get("request_id") or "").strip(),
            subject_type=(data.get("subject_type") or "").strip(),
            subject_id=(data.get("subject_id") or "").strip(),
            kind=data.get("kind") or "",
        )

    def filter_querystring(self) -> str:
        """The filters (not the page) as a query string, for page links and the CSV export."""
        query = QueryDict(mutable=True)
        for name in self.fields:
            if name in {"after", "before"}:
                continue
            value = self.data.get(name)
            if value not in (None, ""):
                query[name] = value
        return query.urlencode()
