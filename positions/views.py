"""Pages of the positions app: the book, an account's syncs, close requests.

A position's own page composes this app with the instructions app: ``backoffice.screens.position``.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backoffice import clock, roles
from backoffice.inputs import whole_number
from backoffice.middleware import json_endpoint
from backoffice.pages import carry_out, refused
from backoffice.secondfactor import step_up_required
from backoffice.workflow import ActionRefused
from positions import queries, services
from positions.forms import (
    BookFilterForm,
    CloseRequestForm,
    OfficialCloseForm,
    PriceDayForm,
    PriceUploadForm,
    RejectForm,
)
from positions.models import Account, CloseRequest, OfficialClose, Position, SyncRun

view_book = permission_required(roles.VIEW_BOOK, raise_exception=True)


class CountedPaginator(Paginator):
    """A paginator told the count by the totals query, so the page costs no second COUNT."""

    def __init__(self, *args, count: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._known_count = count

    @property
    def count(self) -> int:
        return self._known_count


@view_book
@require_GET
def book_list(request: HttpRequest) -> HttpResponse:
    all_accounts = list(Account.objects.visible_to(request.user))
    form = BookFilterForm(request.GET or None, accounts=all_accounts)
    if form.is_bound:
        form.is_valid()  # invalid fields are reported on the form and left out of the filter
    filters = form.filters()
    positions = queries.book(filters, request.user)
    totals = queries.totals(positions, filters, request.user)
    page = CountedPaginator(positions, form.rows_per_page, count=totals.count).get_page(
        request.GET.get("page")
    )
    shown = [a for a in all_accounts if not filters.account_ids or a.number in filters.account_ids]
    query = request.GET.copy()
    query.pop("page", None)
    sort_query = query.copy()
    for key in ("sort", "dir"):
        sort_query.pop(key, None)
    return render(
        request,
        "positions/book.html",
        {
            "form": form,
            "filters": filters,
            "page": page,
            "totals": totals,
            "freshness": queries.freshness(shown),
            "accounts_shown": shown,
            "query": query.urlencode(),
            "sort_query": sort_query.urlencode(),
            "sorts": queries.SORTS,
            "business_date": clock.business_date(),
        },
    )


@view_book
@require_GET
def account_detail(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(Account.objects.visible_to(request.user), number=account_id)
    return render(
        request,
        "positions/account.html",
        {
            "account": account,
            "runs": queries.sync_runs(account),
            "freshness": queries.freshness([account]),
            "close_form": CloseRequestForm(),
            "close_requests": account.close_requests.select_related("requested_by", "decided_by")[:50],
        },
    )


@view_book
@require_GET
def sync_run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(
        SyncRun.objects.visible_to(request.user).select_related("account", "requested_by"), pk=run_id
    )
    return render(request, "positions/sync_run.html", {"run": run})


def _run_json(run: SyncRun) -> dict:
    return {
        "id": run.pk,
        "account_id": run.account.number,
        "status": run.status,
        "pages": run.pages,
        "total_pages": run.total_pages,
        "rows_received": run.rows_received,
        "error": run.error,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "url": reverse("positions:sync_run_detail", args=[run.pk]),
    }


@json_endpoint
@permission_required(roles.OPERATE_SYSTEM, raise_exception=True)
@require_POST
def sync_request(request: HttpRequest) -> JsonResponse:
    """Queue a sync of one account (``account``) or of every active account; answers the runs."""
    raw = request.POST.get("account", "")
    number = whole_number(raw)
    unknown = JsonResponse({"error": {"code": 400, "message": f"Unknown account {raw!r}."}}, status=400)
    if raw and number is None:
        return unknown
    try:
        accounts = queries.sync_targets([number] if number is not None else (), request.user)
    except queries.UnknownAccounts:
        return unknown
    runs = services.request_syncs(accounts, user=request.user)
    return JsonResponse({"runs": [_run_json(run) for run in runs]}, status=202)


@json_endpoint
@view_book
@require_GET
def sync_status(request: HttpRequest) -> JsonResponse:
    parts = [part for part in request.GET.get("runs", "").split(",") if part]
    ids = [n for part in parts if (n := whole_number(part)) is not None]
    if len(ids) != len(parts):
        message = "runs must be a comma-separated list of ids."
        return JsonResponse({"error": {"code": 400, "message": message}}, status=400)
    runs = SyncRun.objects.visible_to(request.user).filter(pk__in=ids[:100]).select_related("account")
    return JsonResponse({"runs": [_run_json(run) for run in runs]})


# --- close requests ---------------------------------------------------------------------------


@permission_required(roles.DRAFT_REQUESTS, raise_exception=True)
@require_POST
def request_close(request: HttpRequest, pk: int) -> HttpResponse:
    position = get_object_or_404(Position.objects.visible_to(request.user).select_related("account"), pk=pk)
    form = CloseRequestForm(request.POST)
    back = reverse("positions:detail", args=[pk])
    if not form.is_valid():
        problems = [str(error) for error in form.errors.get("note", [])]
        messages.error(request, "The close request was not valid: " + "; ".join(problems))
        return redirect(back)
    try:
        close = services.request_close(
            request.user,
            position.account,
            position=position,
            cancel_orders=form.cleaned_data["cancel_orders"],
            note=form.cleaned_data["note"],
        )
    except ActionRefused as exc:
        return refused(request, exc, back)
    messages.success(
        request, f"Close of {position.symbol} requested (#{close.pk}); a supervisor must approve it."
    )
    return redirect("positions:close_detail", close.pk)


@permission_required(roles.DRAFT_REQUESTS, raise_exception=True)
@require_POST
def request_close_all(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(Account.objects.visible_to(request.user), number=account_id)
    form = CloseRequestForm(request.POST)
    back = reverse("positions:account_detail", args=[account_id])
    if not form.is_valid():
        messages.error(request, "The close request was not valid.")
        return redirect(back)
    try:
        close = services.request_close(
            request.user,
            account,
            cancel_orders=form.cleaned_data["cancel_orders"],
            note=form.cleaned_data["note"],
        )
    except ActionRefused as exc:
        return refused(request, exc, back)
    messages.success(request, f"Close of every position in {account.number} requested (#{close.pk}).")
    return redirect("positions:close_detail", close.pk)


@view_book
@require_GET
def close_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "positions/close_list.html",
        {
            "pending": queries.pending_close_requests(request.user),
            "recent": queries.recent_close_requests(request.user),
        },
    )


@view_book
@require_GET
def close_detail(request: HttpRequest, pk: int) -> HttpResponse:
    close = get_object_or_404(
        CloseRequest.objects.visible_to(request.user).select_related("account", "requested_by", "decided_by"),
        pk=pk,
    )
    return render(
        request,
        "positions/close_detail.html",
        {
            "close": close,
            "orders": close.orders.all(),
            "reject_form": RejectForm(),
            "attention": queries.close_attention(close),
        },
    )


@permission_required(roles.APPROVE_REQUESTS, raise_exception=True)
@require_POST
@step_up_required("approve requests")
def approve_close(request: HttpRequest, pk: int) -> HttpResponse:
    return carry_out(
        request,
        lambda: services.approve_close(request.user, pk),
        success="Approved. The close is being sent to Clear Street.",
        back=reverse("positions:close_detail", args=[pk]),
    )


@permission_required(roles.APPROVE_REQUESTS, raise_exception=True)
@require_POST
@step_up_required("reject requests")
def reject_close(request: HttpRequest, pk: int) -> HttpResponse:
    reason = request.POST.get("reason", "")
    return carry_out(
        request,
        lambda: services.reject_close(request.user, pk, reason),
        success="Rejected; the maker sees your reason.",
        back=reverse("positions:close_detail", args=[pk]),
    )


@permission_required(roles.DRAFT_REQUESTS, raise_exception=True)
@require_POST
def withdraw_close(request: HttpRequest, pk: int) -> HttpResponse:
    return carry_out(
        request,
        lambda: services.withdraw_close(request.user, pk),
        success="Withdrawn.",
        back=reverse("positions:close_detail", args=[pk]),
    )


@permission_required(roles.VIEW_BOOK, raise_exception=True)
@require_POST
def acknowledge_close(request: HttpRequest, pk: int) -> HttpResponse:
    reason = request.POST.get("reason", "")
    return carry_out(
        request,
        lambda: services.acknowledge_close(request.user, pk, reason),
        success="Acknowledged.",
        back=reverse("positions:close_detail", args=[pk]),
    )


@permission_required(roles.VIEW_BOOK, raise_exception=True)
@require_http_methods(["GET", "POST"])
def prices(request: HttpRequest) -> HttpResponse:
    """The desk's official closes for a day: entered one at a time, or uploaded as CSV (symbol,
    close, date). Exercise by exception runs off them; the worksheet prefers them."""
    day_form = PriceDayForm(request.GET or None)
    day = day_form.cleaned_data["day"] if day_form.is_valid() and day_form.cleaned_data.get("day") else None
    day = day or clock.business_date()
    entry, upload = OfficialCloseForm(initial={"business_date": day}), PriceUploadForm()
    errors: list[services.PricesInvalid] = []
    if request.method == "POST":
        lines, source = None, OfficialClose.Source.ENTERED
        if "file" in request.FILES:
            upload = PriceUploadForm(request.POST, request.FILES)
            if upload.is_valid():
                lines, source = upload.lines(), OfficialClose.Source.UPLOADED
        else:
            entry = OfficialCloseForm(request.POST)
            if entry.is_valid():
                lines = [entry.line()]
        if lines is not None:
            try:
                saved = services.record_official_closes(request.user, lines, source=source)
            except services.PricesInvalid as invalid:
                errors.append(invalid)
            except ActionRefused as exc:
                return refused(request, exc, reverse("positions:prices"))
            else:
                messages.success(
                    request, f"{len(saved)} official close{'s' if len(saved) != 1 else ''} recorded."
                )
                return redirect(f"{reverse('positions:prices')}?day={saved[0].business_date.isoformat()}")
    return render(
        request,
        "positions/prices.html",
        {
            "day": day,
            "day_form": day_form,
            "closes": queries.official_closes(day),
            "entry": entry,
            "upload": upload,
            "errors": errors,
        },
    )
