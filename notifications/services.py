"""Every write of the notifications app: ``notify`` (write, fold, hand delivery on), what each
announced move means for whom, the watcher's checks, delivery by e-mail and webhook, and a person's
reading and preferences.

Nothing here may break or delay the action that caused it: ``notify`` writes in a savepoint of the
caller's transaction and swallows (and logs) its own failures, and delivery happens in tasks after
the caller committed (``backoffice.jobs``), whose failures are logged, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from backoffice import clock, jobs, roles
from backoffice.audit.links import subject_url
from backoffice.workflow import Workflow
from instructions.models import REJECTED_STATUSES, Batch
from instructions.services.mirror import Reported
from notifications import queries
from notifications.models import Kind, Notification, Preference
from positions.models import Account

logger = logging.getLogger(__name__)

# Read notifications older than this are deleted by the watcher.
KEEP_READ = timedelta(days=90)

DELIVER = "notifications.deliver"
POST_WEBHOOK = "notifications.post_webhook"


@dataclass(frozen=True)
class Event:
    """Something that happened, once: ``key`` names its object (and occasion), ``url`` its page."""

    kind: str
    key: str
    title: str
    url: str = ""
    detail: str = ""


def notify(event: Event, recipients: Iterable[User], *, once: bool = False) -> list[Notification]:
    """Tell ``recipients`` of ``event`` on the channels each chose. A repeat (same kind and key, the
    earlier one unread and touched within ``NOTIFICATIONS_FOLD_SECONDS``) adds to its count instead;
    with ``once``, anyone already told of this key is not told again (the watcher's checks).
    Never raises: a failure here is logged and the caller's action goes on without it."""
    try:
        with transaction.atomic():
            return _notify(event, {person.pk: person for person in recipients}, once)
    except Exception:
        logger.exception("notification %s %s not written", event.kind, event.key)
        return []


def _notify(event: Event, recipients: Mapping[int, User], once: bool) -> list[Notification]:
    now = timezone.now()
    chosen = queries.channels_of(recipients)
    earlier = {
        row.recipient_id: row
        for row in Notification.objects.filter(
            recipient_id__in=list(recipients), kind=event.kind, key=event.key
        ).order_by("recipient_id", "last_at", "id")
    }
    fold_after = now - timedelta(seconds=settings.NOTIFICATIONS_FOLD_SECONDS)
    folded, new = [], []
    for pk in recipients:
        channels = chosen.get((pk, event.kind), queries.Channels())
        if not (channels.in_app or channels.email):
            continue
        previous = earlier.get(pk)
        if previous is not None and once:
            continue
        if previous is not None and previous.read_at is None and previous.last_at >= fold_after:
            folded.append(previous.pk)
            continue
        new.append(
            Notification(
                recipient_id=pk,
                kind=event.kind,
                key=event.key[:200],
                title=event.title[:300],
                detail=event.detail,
                url=event.url,
                first_at=now,
                last_at=now,
                in_app=channels.in_app,
                email_wanted=channels.email and bool(recipients[pk].email),
            )
        )
    if folded:
        Notification.objects.filter(pk__in=folded).update(
            count=F("count") + 1, last_at=now, title=event.title[:300], detail=event.detail
        )
    created = Notification.objects.bulk_create(new)
    if any(row.email_wanted for row in created):
        jobs.enqueue(DELIVER, [row.pk for row in created if row.email_wanted])
    if created and settings.NOTIFICATIONS_WEBHOOK_URL:
        jobs.enqueue(POST_WEBHOOK, f"{event.title} {absolute(event.url)}".strip())
    return created


def absolute(url: str) -> str:
    return f"{settings.SITE_URL.rstrip('/')}{url}" if url.startswith("/") else url


# --- what an announced move means, and for whom -----------------------------------------------------


def announce(
    workflow: Workflow[Any], request: Any, *, from_state: str | None, to_state: str, reason: str
) -> None:
    """A request moved (``backoffice.workflow.recorded``): checkers hear it awaits them, its maker hears
    the decision, the maker and the desk's checkers hear it did not reach its goal."""
    noun = f"{workflow.noun.capitalize()} #{request.pk}"
    key = f"{workflow.subject_type}:{request.pk}"
    url = subject_url(workflow.subject_type, request.pk) or ""
    account = workflow.account_number(request)
    maker_id = workflow.maker_id(request)
    on_account = f" on account {account}" if account is not None else ""
    if from_state == workflow.pending and to_state != workflow.pending:
        # Decided or withdrawn: it no longer awaits anyone.
        Notification.objects.filter(kind=Kind.AWAITING_APPROVAL, key=key, read_at=None).update(
            read_at=timezone.now()
        )
    if to_state == workflow.pending:
        maker = getattr(request, workflow.maker_field)
        event = Event(
            Kind.AWAITING_APPROVAL,
            key,
            f"{noun} awaits your approval",
            url,
            f"Requested by {maker}{on_account}.",
        )
        notify(event, queries.checkers_for(workflow.checker_permission, account, maker_id))
    elif to_state in {workflow.approved, workflow.rejected} and from_state != to_state:
        checker = getattr(request, "decided_by", None)
        by = f" by {checker}" if checker is not None else ""
        verb = "approved" if to_state == workflow.approved else "rejected"
        event = Event(Kind.DECISION, key, f"{noun} was {verb}{by}", url, reason)
        notify(event, User.objects.filter(pk=maker_id, is_active=True))
    elif to_state != workflow.sending and workflow.needs_attention(request):
        event = Event(
            Kind.NOT_DONE, key, f"{noun}{on_account}: {workflow.status_label(to_state)}", url, reason
        )
        desk = {person.pk for person in queries.people_holding([workflow.checker_permission], account)}
        notify(event, User.objects.filter(pk__in=desk | {maker_id}, is_active=True))


# How many instructions a message names before it says "and N more".
NAMED_IN_A_MESSAGE = 10


def announce_rejected_later(account: Account, source: str, changes: Iterable[Reported]) -> None:
    """Clear Street rejected instructions it had taken (sent, then rejected, found by a poll of its
    list): nothing on the desk moved, so nobody would know but for this. Per batch, its maker and
    the account's checkers hear of it; instructions entered elsewhere go to the account's whole
    desk. A rejection in the answer to our own submission is that batch's outcome, told by
    ``announce``."""
    if source == "submit":
        return
    by_batch: dict[int | None, list[Reported]] = {}
    for change in changes:
        if change.from_status and change.to_status in REJECTED_STATUSES:
            by_batch.setdefault(change.batch_id, []).append(change)
    if not by_batch:
        return
    makers = dict(
        Batch.objects.filter(pk__in=[pk for pk in by_batch if pk]).values_list("pk", "created_by_id")
    )
    checkers = {person.pk for person in queries.people_holding([roles.APPROVE_REQUESTS], account.number)}
    for batch_id, rejected in by_batch.items():
        one = len(rejected) == 1
        count = f"{len(rejected)} instruction{'' if one else 's'}"
        if batch_id is None:
            of, key, url = "", f"account:{account.pk}", subject_url("account", account.number)
            desk = queries.people_holding([roles.DRAFT_REQUESTS, roles.APPROVE_REQUESTS], account.number)
            recipients = {person.pk for person in desk}
        else:
            of, key, url = f" of batch #{batch_id}", f"batch:{batch_id}", subject_url("batch", batch_id)
            recipients = checkers | ({makers[batch_id]} if batch_id in makers else set())
        named = [
            f"{change.symbol or change.id}: {change.to_status}"
            + (f" ({change.detail})" if change.detail else "")
            for change in rejected[:NAMED_IN_A_MESSAGE]
        ]
        if len(rejected) > NAMED_IN_A_MESSAGE:
            named.append(f"and {len(rejected) - NAMED_IN_A_MESSAGE} more")
        event = Event(
            Kind.REJECTED_LATER,
            key,
            f"Clear Street rejected {count}{of} on account {account.number} after "
            + ("it was sent" if one else "they were sent"),
            url or "",
            "\n".join(named),
        )
        notify(event, User.objects.filter(pk__in=recipients, is_active=True))


def announce_verification(message: str) -> None:
    """The audit chain's verification (or its checkpoint) failed: compliance and administrators hear
    of it; failures that repeat (a checkpoint every few minutes) fold into one message."""
    event = Event(
        Kind.CHAIN, "chain", "The audit chain's verification failed", reverse("audit:verification"), message
    )
    notify(event, queries.people_in_roles([roles.COMPLIANCE, roles.ADMINS]))


# --- what nobody announces: the watcher ---------------------------------------------------------------


def watch() -> int:
    """Batches about to expire unapproved, stale books, syncs that keep failing: each told once (per
    batch, per snapshot gone stale, per streak of failures) to the desk's people; old read ones go.
    Run by beat."""
    Notification.objects.filter(read_at__lt=timezone.now() - KEEP_READ).delete()
    told = 0
    desk = [roles.DRAFT_REQUESTS, roles.APPROVE_REQUESTS]
    now = clock.now()
    for batch, cutoff in queries.expiring_batches(now):
        minutes = max(1, round((cutoff - now).total_seconds() / 60))
        event = Event(
            Kind.EXPIRING,
            f"batch:{batch.pk}",
            f"Batch #{batch.pk} expires in {minutes} min ({cutoff:%H:%M} ET) unless it is approved and sent",
            subject_url("batch", batch.pk) or "",
            f"It is {batch.get_status_display().lower()} on account {batch.account.number}.",
        )
        told += len(notify(event, queries.people_holding(desk, batch.account.number), once=True))
    for account in queries.stale_accounts():
        as_of = account.snapshot_as_of
        event = Event(
            Kind.BOOK,
            f"stale:{account.pk}:{as_of.isoformat() if as_of else ''}",
            f"The book of account {account.number} is stale",
            subject_url("account", account.number) or "",
            f"Its snapshot is of {timezone.localtime(as_of):%Y-%m-%d %H:%M %Z}." if as_of else "",
        )
        told += len(notify(event, queries.people_holding(desk, account.number), once=True))
    times = settings.NOTIFICATIONS_SYNC_FAILURES
    for account, last_success in queries.failing_syncs(times):
        event = Event(
            Kind.BOOK,
            f"sync-failing:{account.pk}:{last_success}",
            f"The last {times} syncs of account {account.number} failed",
            subject_url("account", account.number) or "",
            "The book shown is the last snapshot that arrived whole.",
        )
        told += len(notify(event, queries.people_holding(desk, account.number), once=True))
    return told


# --- delivery (in tasks, after the caller committed) --------------------------------------------------


def deliver(notification_ids: list[int]) -> int:
    """E-mail the notifications not yet e-mailed; how many went. A mail server that fails is logged
    (the notifications stay in the application), never raised."""
    rows = list(
        Notification.objects.filter(pk__in=notification_ids, email_wanted=True, emailed_at=None)
        .exclude(recipient__email="")
        .select_related("recipient")
    )
    if not rows:
        return 0
    messages = [
        EmailMessage(
            subject=f"[Back-office] {row.title}",
            body="\n\n".join(part for part in (row.title, row.detail, absolute(row.url)) if part),
            to=[row.recipient.email],
        )
        for row in rows
    ]
    try:
        with get_connection(fail_silently=False) as connection:
            sent = connection.send_messages(messages) or 0
    except Exception as exc:
        logger.warning("notification e-mail not sent (%s): %s", type(exc).__name__, exc)
        return 0
    Notification.objects.filter(pk__in=[row.pk for row in rows]).update(emailed_at=timezone.now())
    return sent


def post_webhook(text: str) -> bool:
    """Post ``text`` to the chat webhook (Slack-compatible ``{"text": ...}``); whether it took it.
    A webhook that fails is logged, never raised."""
    url = settings.NOTIFICATIONS_WEBHOOK_URL
    if not url:
        return False
    try:
        response = httpx.post(
            url, json={"text": text}, timeout=settings.NOTIFICATIONS_WEBHOOK_TIMEOUT_SECONDS
        )
        response.raise_for_status()
    except httpx.HTTPError as exc:
        logger.warning("notification webhook failed (%s): %s", type(exc).__name__, exc)
        return False
    logger.info("notification webhook took %r (%s)", text[:200], response.status_code)
    return True


# --- a person's reading and preferences --------------------------------------------------------------


def mark_read(user: User, notification_id: int) -> Notification | None:
    """Mark one of the person's own notifications read; the row, or None if it is not theirs."""
    row = queries.shown_to(user).filter(pk=notification_id).first()
    if row is not None and row.read_at is None:
        row.read_at = timezone.now()
        row.save(update_fields=["read_at"])
    return row


def mark_all_read(user: User) -> int:
    return queries.shown_to(user).filter(read_at=None).update(read_at=timezone.now())


def save_preferences(user: User, chosen: Mapping[str, queries.Channels]) -> None:
    """The person's channels for each kind named (kinds not named keep theirs)."""
    with transaction.atomic():
        for kind, channels in chosen.items():
            if kind in Kind.values:
                Preference.objects.update_or_create(
                    user=user, kind=kind, defaults={"in_app": channels.in_app, "email": channels.email}
                )
