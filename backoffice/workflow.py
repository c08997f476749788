"""The four-eyes machine: every request a second person decides moves through here.

Instruction batches, cancels and closes each declare one ``Workflow`` (their model, transition
table and audit snapshot). A move is always the same steps: lock the request's row, check the role
and the four-eyes rule, check the move against the table, save, and record the decision on the
audit's hash chain. ``execute_once`` carries out an approved request so that Clear Street hears of
it once, whatever number of workers or redeliveries try.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from django.contrib.auth.models import User
from django.core.exceptions import ObjectDoesNotExist
from django.db import models, transaction
from django.dispatch import Signal
from django.utils import timezone

from backoffice import locks, roles
from backoffice.audit.context import SYSTEM, SystemActor
from backoffice.audit.services import audit_context, record_decision
from backoffice.models import AccessRequest
from backoffice.roles import AnyUser

Actor = User | SystemActor

__all__ = [
    "SYSTEM",
    "ActionRefused",
    "AnyUser",
    "Workflow",
    "execute_once",
    "require_checker",
    "require_desk",
    "require_maker",
    "require_permission",
]


class ActionRefused(Exception):
    """A person asked for something the rules do not allow; the message says why, in their words."""

    def __init__(self, message: str, *, code: str = "refused") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def require_permission(user: AnyUser, permission: str, action: str) -> User:
    """The signed-in user, if their role allows ``action``; else the refusal, in their words."""
    if not isinstance(user, User) or not user.is_active or not user.has_perm(permission):
        raise ActionRefused(f"Your role does not allow you to {action}.", code="forbidden")
    return user


def require_maker(user: AnyUser, action: str) -> User:
    return require_permission(user, roles.DRAFT_REQUESTS, action)


def require_desk(user: AnyUser, action: str) -> User:
    """Makers and checkers alike: the people who work the book (prices, acknowledgements)."""
    if isinstance(user, User) and user.is_active and user.has_perm(roles.APPROVE_REQUESTS):
        return user
    return require_permission(user, roles.DRAFT_REQUESTS, action)


def require_checker(
    user: AnyUser, maker_id: int | None, action: str, permission: str = roles.APPROVE_REQUESTS
) -> User:
    """A checker may approve or reject, but never their own request, not even as a superuser, nor
    the request of someone who asked for the checker's own access: an identity one person had made
    is not a second pair of eyes on that person's work."""
    if user.pk is not None and user.pk == maker_id:
        raise ActionRefused(
            "You drafted this request, so someone else must approve or reject it (four-eyes rule).",
            code="self_approval",
        )
    if user.pk is not None and maker_id is not None and sponsored_by(user.pk, maker_id):
        raise ActionRefused(
            "The maker of this request asked for your own access, so someone else must approve or "
            "reject it (four-eyes rule).",
            code="self_approval",
        )
    return require_permission(user, permission, action)


def may_check(user_id: int, maker_id: int | None) -> bool:
    """``require_checker``'s rule as a question (who to tell that a request awaits them): neither
    the maker nor anyone whose access the maker asked for."""
    return user_id != maker_id and not (maker_id is not None and sponsored_by(user_id, maker_id))


def sponsored_by(user_id: int, maker_id: int) -> bool:
    """Whether ``maker_id`` requested an access change of ``user_id`` that was carried out."""
    return AccessRequest.objects.filter(
        subject_id=user_id, requested_by_id=maker_id, status=AccessRequest.Status.APPLIED
    ).exists()


R = TypeVar("R", bound=models.Model)

# Sent after every recorded move or decision, inside the mover's transaction (sender: the request's
# model; workflow, request, from_state, to_state, action, reason). Who must hear of it is an app's concern
# (``notifications`` listens), so the kernel only announces; a receiver must never raise.
recorded = Signal()


@dataclass(frozen=True)
class Workflow(Generic[R]):
    """How one kind of four-eyes request is locked, moved and recorded."""

    model: type[R]
    noun: str  # the word people read: "batch", "close request", "cancel"
    subject_type: str  # the audit's name for it: "batch", "close_request", "cancel_request"
    transitions: Mapping[str, frozenset[str]]
    snapshot: Callable[[R], dict[str, Any]]  # what the audit keeps before and after a move
    account_number: Callable[[R], int | None]  # the Clear Street account the request is about
    pending: str
    approved: str
    rejected: str
    withdrawn: str
    sending: str  # while the call to Clear Street is out
    # Did not reach its goal: stays on the attention list until a person acknowledges it.
    needs_attention: Callable[[R], bool] = lambda request: False
    maker_field: str = "requested_by"
    related: tuple[str, ...] = field(default_factory=tuple)  # joined when the row is locked
    checker_permission: str = roles.APPROVE_REQUESTS  # what a checker of this kind must hold
    # The rows a person may decide (their desks'); others answer "does not exist". None: every row.
    scope: Callable[[AnyUser], models.QuerySet[R]] | None = None
    # The snapshot after a move, from the one taken just before it: a move saves the request's own
    # row and nothing it holds (a batch's rows), so those parts need not be read again. None: taken afresh.
    snapshot_after_move: Callable[[R, dict[str, Any]], dict[str, Any]] | None = None

    def lock(self, pk: int, user: AnyUser | None = None) -> R:
        """The request, row-locked until the caller's transaction ends; with ``user``, only among the
        rows the workflow's ``scope`` lets that person decide."""
        rows = self.model._default_manager.all()
        if user is not None and self.scope is not None:
            rows = self.scope(user)
        try:
            return rows.select_for_update(of=("self",)).select_related(*self.related).get(pk=pk)
        except ObjectDoesNotExist:
            raise ActionRefused(f"{self.noun.capitalize()} #{pk} does not exist.", code="not_found") from None

    def lock_for(self, user: AnyUser, pk: int, permission: str, action: str) -> R:
        """``lock`` for someone about to act: where the row is out of their reach, a role that may not
        ``action`` hears so (which says nothing of the row), a role that may hears "does not exist"."""
        try:
            return self.lock(pk, user)
        except ActionRefused as refused:
            if refused.code == "not_found":
                require_permission(user, permission, action)
            raise

    def maker_id(self, request: R) -> int:
        return int(getattr(request, f"{self.maker_field}_id"))

    def status_label(self, status: str) -> str:
        field = self.model._meta.get_field("status")
        assert isinstance(field, models.Field)
        return str(dict(field.flatchoices).get(status, status)).lower()

    def can_move(self, request: R, to: str) -> bool:
        return to in self.transitions[self.status(request)]

    @staticmethod
    def status(request: R) -> str:
        return str(request.status)  # type: ignore[attr-defined]

    def move(
        self,
        request: R,
        to: str,
        *,
        actor: Actor,
        action: str,
        reason: str = "",
        approver: User | None = None,
        before: dict[str, Any] | None = None,
    ) -> None:
        """Move the locked request to ``to`` if its table allows it, save it (with any field the caller
        set first), then record who, when, from, to and why.

        The request is saved before the audit row is written (the audit commits on its own), so a
        save that fails leaves no record of a move that never happened.
        """
        current = self.status(request)
        if not self.can_move(request, to):
            raise ActionRefused(
                f"{self.noun.capitalize()} #{request.pk} is {self.status_label(current)}; "
                f"it cannot become {self.status_label(to)}.",
                code="invalid_transition",
            )
        # A snapshot the caller took earlier may predate changes to what the request holds.
        taken_here = before is None
        before = self.snapshot(request) if before is None else before
        request.status = to  # type: ignore[attr-defined]
        request.save()
        if taken_here and self.snapshot_after_move is not None:
            after = self.snapshot_after_move(request, before)
        else:
            after = self.snapshot(request)
        record_decision(
            action=action,
            actor=actor,
            approver=approver,
            subject_type=self.subject_type,
            subject_id=request.pk,
            account_id=self.account_number(request),
            from_state=current,
            to_state=to,
            reason=reason,
            before=before,
            after=after,
        )
        recorded.send(
            self.model,
            workflow=self,
            request=request,
            from_state=current,
            to_state=to,
            action=action,
            reason=reason,
        )

    def record(
        self, request: R, *, actor: Actor, action: str, reason: str = "", before: dict[str, Any] | None = None
    ) -> None:
        """Record a decision that is not a move (a request created, a draft edited), as a move is."""
        record_decision(
            action=action,
            actor=actor,
            subject_type=self.subject_type,
            subject_id=request.pk,
            account_id=self.account_number(request),
            from_state=before.get("status") if before else None,
            to_state=self.status(request),
            reason=reason,
            before=before,
            after=self.snapshot(request),
        )
        recorded.send(
            self.model,
            workflow=self,
            request=request,
            from_state=before.get("status") if before else None,
            to_state=self.status(request),
            action=action,
            reason=reason,
        )

    def calls_made_for(self, request: R, celery_task_id: str | None) -> AbstractContextManager[Any]:
        """Attribute the upstream calls that carry out ``request`` to its maker and its checker."""
        return audit_context(
            actor=getattr(request, self.maker_field),
            approver=getattr(request, "decided_by", None),
            account_id=self.account_number(request),
            subject_type=self.subject_type,
            subject_id=request.pk,
            celery_task_id=celery_task_id,
        )

    def acknowledge(self, user: AnyUser, pk: int, reason: str) -> R:
        """A person on the desk takes a failure off the attention list, saying what they did about it."""
        with transaction.atomic():
            request = self.lock(pk, user)  # first: another desk's request is not there at all
            person = require_desk(user, f"acknowledge {self.noun}s")
            reason = reason.strip()
            if not reason:
                raise ActionRefused(
                    "Say what was done about it (checked the orders, redrafted, accepted the outcome...).",
                    code="reason_required",
                )
            if getattr(request, "acknowledged_at", None) is not None:
                raise ActionRefused(
                    f"{self.noun.capitalize()} #{pk} was already acknowledged.", code="invalid_transition"
                )
            if not self.needs_attention(request):
                raise ActionRefused(
                    f"{self.noun.capitalize()} #{pk} is {self.status_label(self.status(request))}: "
                    "there is nothing to acknowledge.",
                    code="invalid_transition",
                )
            before = self.snapshot(request)
            request.acknowledged_by, request.acknowledged_at = person, timezone.now()  # type: ignore[attr-defined]
            request.acknowledgement = reason  # type: ignore[attr-defined]
            request.save()
            self.record(request, actor=person, action="acknowledged", reason=reason, before=before)
        return request

    def _require(self, request: R, status: str, verb: str) -> None:
        if self.status(request) != status:
            raise ActionRefused(
                f"{self.noun.capitalize()} #{request.pk} is {self.status_label(self.status(request))}; "
                f"it cannot be {verb}.",
                code="invalid_transition",
            )

    def approve(
        self,
        user: AnyUser,
        pk: int,
        *,
        check: Callable[[R], str] | None = None,
        then: Callable[[R], None] | None = None,
    ) -> R:
        """A checker's approval (never the maker's). ``check`` runs under the lock and may refuse,
        or answer a reason to record; ``then`` hands the work on, in the same transaction."""
        with transaction.atomic():
            request = self.lock_for(user, pk, self.checker_permission, f"approve {self.noun}s")
            checker = require_checker(
                user, self.maker_id(request), f"approve {self.noun}s", self.checker_permission
            )
            self._require(request, self.pending, "approved")
            reason = check(request) if check is not None else ""
            request.decided_by, request.decided_at = checker, timezone.now()  # type: ignore[attr-defined]
            self.move(
                request, self.approved, actor=checker, approver=checker, action="approved", reason=reason
            )
            if then is not None:
                then(request)
        return request

    def reject(self, user: AnyUser, pk: int, reason: str) -> R:
        with transaction.atomic():
            request = self.lock_for(user, pk, self.checker_permission, f"reject {self.noun}s")
            checker = require_checker(
                user, self.maker_id(request), f"reject {self.noun}s", self.checker_permission
            )
            reason = reason.strip()
            if not reason:
                raise ActionRefused(
                    "Give a reason for the rejection: the maker will read it.", code="reason_required"
                )
            self._require(request, self.pending, "rejected")
            request.decided_by, request.decided_at = checker, timezone.now()  # type: ignore[attr-defined]
            request.decision_reason = reason  # type: ignore[attr-defined]
            self.move(request, self.rejected, actor=checker, action="rejected", reason=reason)
        return request

    def withdraw(self, user: AnyUser, pk: int) -> R:
        with transaction.atomic():
            request = self.lock(pk, user)
            if not isinstance(user, User) or self.maker_id(request) != user.pk:
                raise ActionRefused(
                    f"Only the person who requested this {self.noun} can withdraw it.", code="forbidden"
                )
            self.move(request, self.withdrawn, actor=user, action="withdrew")
        return request


def execute_once(
    workflow: Workflow[R],
    pk: int,
    *,
    send: Callable[[R], R],
    interrupted: Callable[[R], None] | None,
    attempt: Callable[[R], None] | None = None,
) -> R:
    """Carry out an approved request so that Clear Street hears of it once.

    Under an advisory lock per request (a second worker answers the request as it stands), the
    request moves from approved to ``workflow.sending`` in a transaction that commits before
    ``send`` makes its call. A request found already sending had a worker die mid-call: with
    ``interrupted`` that function settles it (the outcome is unknown; nothing is resent), without
    it ``send`` runs again and must first read what Clear Street already has. ``attempt`` stamps
    each attempt on the request under its row lock. Anything else (settled, never approved) is
    answered as it stands: a duplicate delivery of the task.
    """

    def run() -> R:
        with transaction.atomic():
            request = workflow.lock(pk)
            status = workflow.status(request)
            if status == workflow.sending and interrupted is not None:
                interrupted(request)
                return request
            if status not in {workflow.approved, workflow.sending}:
                return request
            if attempt is not None:
                attempt(request)
            if status == workflow.approved:
                workflow.move(request, workflow.sending, actor=SYSTEM, action="submitting")
            else:
                request.save()
        return send(request)

    return locks.run_exclusively(
        f"execute.{workflow.subject_type}",
        pk,
        run,
        when_busy=lambda: workflow.model._default_manager.get(pk=pk),
    )
