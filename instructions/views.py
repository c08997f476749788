"""Pages of the instructions app: batches and their approval, the mirror, cancels, the worksheet."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backoffice import clock, roles
from backoffice.inputs import whole_number, whole_numbers
from backoffice.pages import carry_out, refused
from backoffice.roles import AnyUser
from backoffice.secondfactor import step_up_required
from backoffice.workflow import ActionRefused
from instructions import queries, services
from instructions.forms import ApproveForm, BatchNoteForm, BatchRowFormSet, ReasonForm, WorksheetForm
from instructions.models import Batch, CancelRequest, Instruction, InstructionStatus, InstructionType
from positions.models import Account, Position

view_book = permission_required(roles.VIEW_BOOK, raise_exception=True)
maker_only = permission_required(roles.DRAFT_REQUESTS, raise_exception=True)
checker_only = permission_required(roles.APPROVE_REQUESTS, raise_exception=True)
desk_only = permission_required([roles.VIEW_BOOK], raise_exception=True)  # the service checks the role


# --- batches -------------------------------------------------------------------------------------


def _batch_action(request: HttpRequest, pk: int, act, success: str) -> HttpResponse:
    return carry_out(request, act, success=success, back=reverse("instructions:batch_detail", args=[pk]))


def _cancel_action(request: HttpRequest, pk: int, act, success: str) -> HttpResponse:
    return carry_out(request, act, success=success, back=reverse("instructions:cancel_detail", args=[pk]))


@view_book
@require_GET
def batch_list(request: HttpRequest) -> HttpResponse:
    scope = request.GET.get("scope", "open")
    status = "open" if scope == "open" else request.GET.get("status", "")
    if status and status != "open" and status not in Batch.Status.values:
        status = ""
    rows = queries.batches(request.user, status=status, mine=scope == "mine")[:200]
    return render(
        request,
        "instructions/batches.html",
        {"batches": rows, "scope": scope, "status": status, "statuses": Batch.Status.choices},
    )


def _initial_rows(viewer: AnyUser, position_ids: list[int], instruction_type: str) -> list[dict]:
    positions = (
        Position.objects.visible_to(viewer)
        .filter(pk__in=position_ids, instrument_type="OPTION")
        .select_related("account")
    )
    return [
        {
            "position_id": p.pk,
            "instruction_type": instruction_type,
            "quantity": queries.allowed_contracts(p) or 1,
        }
        for p in sorted(positions, key=lambda p: (p.account.number, p.symbol))
    ]


def _mark_rows(forms: list, invalid: services.BatchInvalid) -> None:
    """Put each of the rules' objections on the row and field it is about."""
    for error in invalid.errors:
        if 0 <= error.row < len(forms):
            form = forms[error.row]
            field = error.field if error.field in form.fields and error.field != "position_id" else None
            form.add_error(field, error.message)


def _positions_for(viewer: AnyUser, formset) -> dict[int, Position]:
    """The rows' positions, among the viewer's desks' (another desk's is not in their book)."""
    ids = [
        form.initial.get("position_id") or form.data.get(f"{form.prefix}-position_id")
        for form in formset.forms
    ]
    positions = Position.objects.visible_to(viewer).select_related("account")
    return positions.in_bulk(whole_numbers([str(i or "") for i in ids]))


def _redraft_rows(maker: AnyUser, batch_pk: int | None) -> list[dict[str, object]]:
    """The rows of a maker's batch that did not go (never sent, rejected, or unknown), as they were."""
    if batch_pk is None:
        return []
    batch = Batch.objects.visible_to(maker).filter(pk=batch_pk, created_by_id=maker.pk).first()
    if batch is None:
        return []
    return [
        {
            "position_id": row.position_id,
            "instruction_type": row.instruction_type,
            "quantity": row.quantity,
            "override_reason": row.override_reason,
        }
        for row in queries.rows_to_redraft(batch)
    ]


def _form_page(request: HttpRequest, formset: Any, note: BatchNoteForm, batch: Batch | None) -> HttpResponse:
    """The batch form, each row saying what can still be drafted on it now and why the rest cannot;
    a fresh form offers only the instruction types still possible."""
    positions = _positions_for(request.user, formset)
    guidance = queries.guidance(list(positions.values()), clock.now())
    for form in formset.forms:
        position = positions.get(_whole(form.initial.get("position_id")) or 0)
        refusals = guidance.get(position.pk, {}) if position else {}
        possible = [(kind, label) for kind, label in InstructionType.choices if not refusals.get(kind)]
        if not form.is_bound and possible:
            form.fields["instruction_type"].choices = possible
            if form.initial.get("instruction_type") not in dict(possible):
                form.initial["instruction_type"] = possible[0][0]
    return render(
        request,
        "instructions/batch_form.html",
        {
            "formset": formset,
            "note_form": note,
            "positions": positions,
            "guidance": guidance,
            "batch": batch,
            "redraft": request.GET.get("redraft") or request.POST.get("redraft", ""),
        },
    )


def _whole(raw: object) -> int | None:
    return whole_number(str(raw)) if raw is not None else None


@maker_only
@require_http_methods(["GET", "POST"])
def batch_new(request: HttpRequest) -> HttpResponse:
    """Draft one batch per account from the positions a maker selected on the book or the worksheet."""
    if request.method == "POST":
        formset = BatchRowFormSet(request.POST, prefix="rows")
        note = BatchNoteForm(request.POST)
        if formset.is_valid() and note.is_valid():
            forms_by_account: dict[int, list] = defaultdict(list)
            positions = _positions_for(request.user, formset)
            for form in formset.forms:
                if form.cleaned_data.get("DELETE"):
                    continue
                position = positions.get(form.cleaned_data["position_id"])
                if position is None:
                    messages.error(request, "A selected position is no longer in the book; select again.")
                    return redirect("positions:list")
                forms_by_account[position.account_id].append(form)
            if not forms_by_account:
                messages.error(request, "Every row was removed: nothing to draft.")
                return redirect("positions:list")
            accounts = Account.objects.visible_to(request.user).in_bulk(list(forms_by_account))
            groups = [
                (accounts[pk], [form.spec() for form in forms]) for pk, forms in forms_by_account.items()
            ]
            try:
                created = services.create_batches(request.user, groups, note.cleaned_data["note"])
            except services.BatchInvalid as invalid:
                _mark_rows(forms_by_account[invalid.account.pk if invalid.account else 0], invalid)
                messages.error(request, "Nothing was drafted: fix the rows marked below.")
            except ActionRefused as exc:
                messages.error(request, exc.message)
            else:
                replaced = whole_number(request.POST.get("redraft", ""))
                if replaced is not None:
                    drafted = ", ".join(f"#{batch.pk}" for batch in created)
                    # Acknowledged meanwhile, or nothing to acknowledge: the new batch stands all the same.
                    with contextlib.suppress(ActionRefused):
                        services.acknowledge_batch(request.user, replaced, f"redrafted as batch {drafted}")
                if len(created) == 1:
                    messages.success(
                        request, f"Batch #{created[0].pk} drafted. Review it, then submit it for approval."
                    )
                    return redirect("instructions:batch_detail", created[0].pk)
                messages.success(request, f"{len(created)} batches drafted, one per account.")
                return redirect(f"{reverse('instructions:batches')}?scope=mine")
    else:
        ids = whole_numbers(request.GET.getlist("position"))
        instruction_type = request.GET.get("type", InstructionType.EXERCISE)
        if instruction_type not in InstructionType.values:
            instruction_type = InstructionType.EXERCISE
        initial = _redraft_rows(request.user, whole_number(request.GET.get("redraft", ""))) or _initial_rows(
            request.user, ids, instruction_type
        )
        if not initial:
            messages.error(
                request, "Select one or more option positions first, on the book or the worksheet."
            )
            return redirect("positions:list")
        formset = BatchRowFormSet(initial=initial, prefix="rows")
        note = BatchNoteForm()
    return _form_page(request, formset, note, None)


@maker_only
@require_http_methods(["GET", "POST"])
def batch_edit(request: HttpRequest, pk: int) -> HttpResponse:
    batch = queries.batch(pk, request.user)
    if batch is None:
        raise Http404("No such batch")
    back = reverse("instructions:batch_detail", args=[pk])
    if request.method == "POST":
        formset = BatchRowFormSet(request.POST, prefix="rows")
        note = BatchNoteForm(request.POST)
        if formset.is_valid() and note.is_valid():
            kept = [f for f in formset.forms if not f.cleaned_data.get("DELETE")]
            try:
                services.update_batch(request.user, pk, [f.spec() for f in kept], note.cleaned_data["note"])
            except services.BatchInvalid as invalid:
                _mark_rows(kept, invalid)
                messages.error(request, "Not saved: fix the rows marked below.")
                return _form_page(request, formset, note, batch)
            except ActionRefused as exc:
                return refused(request, exc, reverse("instructions:batch_edit", args=[pk]))
            messages.success(
                request,
                "Batch updated."
                + (
                    " It went back to the approval queue."
                    if batch.status == Batch.Status.PENDING_APPROVAL
                    else ""
                ),
            )
            return redirect(back)
    else:
        if not batch.editable_by(request.user):
            messages.error(
                request, f"Batch #{pk} is {batch.get_status_display().lower()}; it can no longer be edited."
            )
            return redirect(back)
        formset = BatchRowFormSet(
            initial=[
                {
                    "position_id": r.position_id,
                    "instruction_type": r.instruction_type,
                    "quantity": r.quantity,
                    "override_reason": r.override_reason,
                }
                for r in batch.rows.all()
                if r.position_id
            ],
            prefix="rows",
        )
        note = BatchNoteForm(initial={"note": batch.note})
    return _form_page(request, formset, note, batch)


@view_book
@require_GET
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The batch with each row's economics, what needs attention, and what this person may do now;
    ``?part=live`` is the part the page refreshes (status, rows' answers, attention)."""
    batch = queries.batch(pk, request.user)
    if batch is None:
        raise Http404("No such batch")
    drifts = queries.position_changes(batch) if batch.status == Batch.Status.PENDING_APPROVAL else []
    drift_by_symbol: dict[str, list[queries.PositionDrift]] = defaultdict(list)
    for drift in drifts:
        drift_by_symbol[drift.symbol].append(drift)
    review = queries.review(batch, request.user)
    now = clock.now()
    attention = queries.batch_attention(request.user, batch.pk)
    is_maker = batch.created_by_id == request.user.pk
    context = {
        "batch": batch,
        "review": review,
        "rows": [(line, drift_by_symbol.get(line.row.symbol, [])) for line in review.rows],
        "drifts": drifts,
        "attention": attention,
        "approve_form": ApproveForm(initial={"version": batch.version}),
        "reason_form": ReasonForm(),
        "editable": batch.editable_by(request.user),
        "is_maker": is_maker,
        "past_cutoff": now > review.cutoff,
        "can_retry": batch.status == Batch.Status.FAILED and not is_maker and now <= review.cutoff,
        "can_redraft": is_maker and queries.may_redraft(batch),
        "live_url": f"{reverse('instructions:batch_detail', args=[pk])}?part=live",
    }
    template = "instructions/_batch_live.html" if request.GET.get("part") == "live" else None
    return render(request, template or "instructions/batch_detail.html", context)


@maker_only
@require_POST
def batch_submit(request: HttpRequest, pk: int) -> HttpResponse:
    return _batch_action(
        request,
        pk,
        lambda: services.submit_for_approval(request.user, pk),
        "Submitted for approval: a supervisor will review it.",
    )


@maker_only
@require_POST
def batch_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    return _batch_action(request, pk, lambda: services.withdraw_batch(request.user, pk), "Batch withdrawn.")


@checker_only
@require_POST
@step_up_required("approve requests")
def batch_approve(request: HttpRequest, pk: int) -> HttpResponse:
    if not Batch.objects.visible_to(request.user).filter(pk=pk).exists():
        raise Http404("No such batch")
    form = ApproveForm(request.POST)
    if not form.is_valid():  # the version the checker reviewed is part of the approval
        messages.error(request, "Reload the batch and review it before approving.")
        return redirect("instructions:batch_detail", pk)
    version, confirm = form.cleaned_data["version"], form.cleaned_data["confirm_changes"]
    return _batch_action(
        request,
        pk,
        lambda: services.approve_batch(request.user, pk, version=version, confirm_changes=confirm),
        "Approved. The batch is being sent to Clear Street.",
    )


@checker_only
@require_POST
@step_up_required("reject requests")
def batch_reject(request: HttpRequest, pk: int) -> HttpResponse:
    reason = request.POST.get("reason", "")
    return _batch_action(
        request,
        pk,
        lambda: services.reject_batch(request.user, pk, reason),
        "Rejected; the maker sees your reason.",
    )


@checker_only
@require_POST
@step_up_required("approve requests")
def batch_retry(request: HttpRequest, pk: int) -> HttpResponse:
    return _batch_action(
        request,
        pk,
        lambda: services.retry_batch(request.user, pk),
        "Retry approved: the batch is being sent again; rows Clear Street already has are not resent.",
    )


@desk_only
@require_POST
def batch_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    reason = request.POST.get("reason", "")
    return _batch_action(
        request, pk, lambda: services.acknowledge_batch(request.user, pk, reason), "Acknowledged."
    )


@view_book
@require_GET
def approvals(request: HttpRequest) -> HttpResponse:
    """The checker's queue: pending batches by the cutoff that governs them (soonest first), then
    cancels; ``?part=queue`` is the part the page refreshes."""
    batches = list(queries.pending_batches(request.user))
    cutoffs = queries.batch_cutoffs(batches, with_rows=True)
    pending = sorted(
        ((batch, cutoffs[batch.pk]) for batch in batches),
        key=lambda pair: (pair[1], pair[0].submitted_for_approval_at or pair[0].created_at),
    )
    context = {
        "pending": pending,
        "cancels": queries.pending_cancels(request.user),
        "now": clock.now(),
        "queue_url": f"{reverse('instructions:approvals')}?part=queue",
    }
    template = "instructions/_approval_queue.html" if request.GET.get("part") == "queue" else None
    return render(request, template or "instructions/approvals.html", context)


@view_book
@require_GET
def attention(request: HttpRequest) -> HttpResponse:
    """Everything that did not reach its goal, until a person resolves or acknowledges it."""
    return render(request, "instructions/attention.html", {"items": queries.attention_items(request.user)})


# --- the mirror and cancels ----------------------------------------------------------------------


@view_book
@require_GET
def instruction_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    status = status if status in InstructionStatus.values else ""
    account_id = whole_number(request.GET.get("account", ""))  # account 0 exists
    rows = queries.instructions(
        request.user,
        account_id=account_id,
        status=status,
        live_only=request.GET.get("live") == "on",
        search=request.GET.get("q", "")[:32],
    )[:500]
    return render(
        request,
        "instructions/instruction_list.html",
        {
            "instructions": rows,
            "statuses": InstructionStatus.choices,
            "status": status,
            "accounts": Account.objects.visible_to(request.user),
            "account_id": account_id,
        },
    )


@view_book
@require_GET
def instruction_detail(request: HttpRequest, pk: str) -> HttpResponse:
    instruction = get_object_or_404(
        Instruction.objects.visible_to(request.user).select_related("account", "batch_row__batch"), pk=pk
    )
    cancel_blocker = instruction.cancel_blocker(queries.open_cancel(instruction))
    return render(
        request,
        "instructions/instruction_detail.html",
        {
            "instruction": instruction,
            "timeline": queries.timeline(instruction),
            "cancels": instruction.cancel_requests.select_related("requested_by", "decided_by"),
            "can_cancel": not cancel_blocker,
            "cancel_blocker": cancel_blocker,
        },
    )


@maker_only
@require_POST
def cancel_request(request: HttpRequest, pk: str) -> HttpResponse:
    back = reverse("instructions:instruction_detail", args=[pk])
    try:
        cancel = services.request_cancel(request.user, pk, request.POST.get("note", ""))
    except ActionRefused as exc:
        return refused(request, exc, back)
    messages.success(request, f"Cancel requested (#{cancel.pk}); a supervisor must approve it.")
    return redirect("instructions:cancel_detail", cancel.pk)


@view_book
@require_GET
def cancel_detail(request: HttpRequest, pk: int) -> HttpResponse:
    cancel = get_object_or_404(
        CancelRequest.objects.visible_to(request.user).select_related(
            "instruction__account", "requested_by", "decided_by"
        ),
        pk=pk,
    )
    attention = [
        item
        for item in queries.attention_items(request.user)
        if item.kind == "cancel" and item.pk == cancel.pk
    ]
    return render(
        request,
        "instructions/cancel_detail.html",
        {"cancel": cancel, "reason_form": ReasonForm(), "attention": attention},
    )


@checker_only
@require_POST
@step_up_required("approve requests")
def cancel_approve(request: HttpRequest, pk: int) -> HttpResponse:
    return _cancel_action(
        request, pk, lambda: services.approve_cancel(request.user, pk), "Approved: the cancel is being sent."
    )


@checker_only
@require_POST
@step_up_required("reject requests")
def cancel_reject(request: HttpRequest, pk: int) -> HttpResponse:
    reason = request.POST.get("reason", "")
    return _cancel_action(
        request, pk, lambda: services.reject_cancel(request.user, pk, reason), "Cancel rejected."
    )


@maker_only
@require_POST
def cancel_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    return _cancel_action(
        request, pk, lambda: services.withdraw_cancel(request.user, pk), "Cancel withdrawn."
    )


@desk_only
@require_POST
def cancel_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    reason = request.POST.get("reason", "")
    return _cancel_action(
        request, pk, lambda: services.acknowledge_cancel(request.user, pk, reason), "Acknowledged."
    )


# --- the expiration worksheet --------------------------------------------------------------------


WORKSHEET_PARTS = {"head": "instructions/_worksheet_head.html", "rows": "instructions/_worksheet_groups.html"}


@view_book
@require_GET
def worksheet(request: HttpRequest) -> HttpResponse:
    """The whole sheet, or one of its live parts: ``part=head``, or ``part=rows&underlying=X``
    (``&group_account=N`` for one account's group, ``&start=K`` for its rows from the K-th)."""
    accounts = list(Account.objects.visible_to(request.user))
    form = WorksheetForm(request.GET or None, accounts=accounts)
    day = None
    account_ids: tuple[int, ...] = ()
    underlying = None
    group_account = None
    start = 0
    filters = None
    if form.is_bound and form.is_valid():
        day = form.cleaned_data.get("day")
        account_ids = (int(form.cleaned_data["account"]),) if form.cleaned_data.get("account") else ()
        underlying = form.cleaned_data.get("underlying") or None
        group_account = form.cleaned_data.get("group_account")
        start = form.cleaned_data.get("start") or 0
        filters = form.filters()
    part = WORKSHEET_PARTS.get(request.GET.get("part", ""))
    if part and group_account is not None and not account_ids:
        account_ids = (group_account,)  # one account's group: the other accounts need not be read
    sheet = queries.worksheet(
        request.user,
        day,
        account_ids,
        underlying=underlying,
        group_account=group_account,
        start=start,
        filters=filters,
        build_rows=part != WORKSHEET_PARTS["head"],
    )
    query = request.GET.copy()
    for name in ("underlying", "group_account", "start", "part"):
        query.pop(name, None)
    if sheet.day is not None:
        query["day"] = sheet.day.isoformat()
    base = f"{reverse('instructions:worksheet')}?{query.urlencode()}"
    context = {
        "form": form,
        "sheet": sheet,
        "groups": [group for group in sheet.groups if group.open] if part else [],
        "instruction_types": InstructionType.choices,
        "query": query.urlencode(),
        "head_url": f"{base}&part=head",
        "rows_url": f"{base}&part=rows",
    }
    return render(request, part or "instructions/worksheet.html", context)
