"""Compliance pages: the audit list, one row in full, the CSV export, the chain's status."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from backoffice.audit import queries, services
from backoffice.audit.forms import DEFAULT_PAGE_SIZE, AuditFilterForm
from backoffice.audit.links import subject_url
from backoffice.audit.models import BODY_FIELDS, CHAIN_FIELDS, SUMMARY_FIELDS, AuditEntry, ChainVerification
from backoffice.roles import VIEW_AUDIT

# raise_exception: a signed-in user without the permission gets a 403, not a login loop.
compliance_only = permission_required(VIEW_AUDIT, raise_exception=True)


@require_GET
@compliance_only
def entry_list(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    page = None
    if form.is_valid():
        page = queries.audit_page(
            form.filters(),
            per_page=form.cleaned_data["per_page"] or DEFAULT_PAGE_SIZE,
            after=form.cleaned_data["after"],
            before=form.cleaned_data["before"],
            columns=queries.LIST_COLUMNS,
        )
    context = {
        "form": form,
        "page": page,
        "querystring": form.filter_querystring(),
        "verification": queries.chain_status(),
    }
    return render(request, "audit/list.html", context, status=200 if page is not None else 400)


def _pretty_text(text: str | None) -> str:
    """A body kept as the text received: indented when it is JSON (large pages are), else nothing."""
    if not text:
        return ""
    try:
        return _pretty(json.loads(text))
    except ValueError:
        return ""


def _pretty(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@require_GET
@compliance_only
def entry_detail(request: HttpRequest, entry_id: int) -> HttpResponse:
    entry = queries.entry(entry_id)
    if entry is None:
        raise Http404("No such audit entry.")
    context = {
        "entry": entry,
        "subject_link": subject_url(entry.subject_type, entry.subject_id),
        "account_link": subject_url("account", entry.account_id),
        "sync_run_link": subject_url("sync_run", entry.sync_run_id),
        "query": _pretty(entry.query),
        "request_headers": _pretty(entry.request_headers),
        "request_body": _pretty(entry.request_body),
        "response_body": _pretty(entry.response_body)
        if entry.response_body is not None
        else _pretty_text(entry.response_text),
        "before": _pretty(entry.before),
        "after": _pretty(entry.after),
    }
    return render(request, "audit/detail.html", context)


CSV_COLUMNS: tuple[str, ...] = (*SUMMARY_FIELDS, *BODY_FIELDS, *CHAIN_FIELDS)
_JSON_COLUMNS = frozenset({"query", "request_headers", "request_body", "response_body", "before", "after"})
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name in _JSON_COLUMNS:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    elif name == "occurred_at":
        text = value.astimezone(dt.UTC).isoformat()
    else:
        text = str(value)
    # A spreadsheet would run "=..." as a formula; an apostrophe keeps it text.
    return "'" + text if text.startswith(_FORMULA_PREFIXES) and name not in {"duration_ms"} else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(entries: Iterable[AuditEntry]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for entry in entries:
        yield writer.writerow([_csv_cell(name, getattr(entry, name)) for name in CSV_COLUMNS])


@require_GET
@compliance_only
def export_csv(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        return render(
            request,
            "audit/list.html",
            {"form": form, "page": None, "querystring": "", "verification": None},
            status=400,
        )
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(
        _csv_lines(queries.export_rows(form.filters())), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    return response


@require_GET
@compliance_only
def verification_status(request: HttpRequest) -> HttpResponse:
    return render(request, "audit/verification.html", {"runs": queries.recent_verifications()})


@require_POST
@compliance_only
def verify_now(request: HttpRequest) -> HttpResponse:
    from backoffice.audit.tasks import verify_chain

    try:
        run = services.request_verification(request.user.get_username())
    except services.VerificationBusy as busy:
        messages.info(request, str(busy))
        return redirect("audit:verification")
    try:
        verify_chain.delay(
            trigger=ChainVerification.Trigger.MANUAL, requested_by=request.user.get_username(), run_id=run.pk
        )
    except Exception:  # the broker is down: say so rather than fail the page
        run.delete()  # nothing will run it: do not leave it waiting and blocking the next request
        messages.error(request, "Could not queue the verification (the task queue is unreachable).")
    else:
        messages.success(request, "Verification queued; its result appears here when it finishes.")
    return redirect("audit:verification")
