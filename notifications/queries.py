"""Reads of the notifications app: a person's bell and list, their preferences, who hears of what
(the desk's people, by what their role lets them do), and what the watcher looks for."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.utils import timezone

from backoffice import clock
from backoffice.workflow import may_check
from instructions.models import Batch
from instructions.queries import expiring_cutoffs
from notifications.models import Kind, Notification, Preference
from positions.models import Account, Desk, SyncRun

# --- a person's notifications ----------------------------------------------------------------------


def shown_to(user: User) -> QuerySet[Notification]:
    return Notification.objects.filter(recipient=user, in_app=True)


def unread_count(user: User) -> int:
    return shown_to(user).filter(read_at=None).count()


def recent(user: User, limit: int = 100) -> list[Notification]:
    return list(shown_to(user).order_by("-last_at", "-id")[:limit])


@dataclass(frozen=True)
class Channels:
    in_app: bool = True
    email: bool = True


def channels_of(user_ids: Iterable[int]) -> dict[tuple[int, str], Channels]:
    """Each person's channels per kind, where they chose them (the rest: both channels)."""
    return {
        (pref.user_id, pref.kind): Channels(pref.in_app, pref.email)
        for pref in Preference.objects.filter(user_id__in=list(user_ids))
    }


def preferences(user: User) -> list[tuple[str, str, Channels]]:
    """Every kind with its label and this person's channels for it, in the kinds' order."""
    chosen = channels_of([user.pk])
    return [(kind, label, chosen.get((user.pk, kind), Channels())) for kind, label in Kind.choices]


# --- who hears of what -------------------------------------------------------------------------------


def _holders(permission: str) -> Q:
    app_label, codename = permission.split(".", 1)
    return (
        Q(is_superuser=True)
        | Q(groups__permissions__codename=codename, groups__permissions__content_type__app_label=app_label)
        | Q(
            user_permissions__codename=codename,
            user_permissions__content_type__app_label=app_label,
        )
    )


def people_holding(permissions: Iterable[str], account_number: int | None) -> list[User]:
    """Active people whose role allows any of ``permissions``, on a desk that owns the account (with
    no account, wherever they sit)."""
    holds = Q()
    for permission in permissions:
        holds |= _holders(permission)
    people = User.objects.filter(holds, is_active=True)
    if account_number is not None:
        on_desk = Desk.members.through.objects.filter(desk__accounts__number=account_number)
        people = people.filter(pk__in=on_desk.values("user_id"))
    return list(people.distinct().order_by("pk"))


def checkers_for(permission: str, account_number: int | None, maker_id: int | None) -> list[User]:
    """Who may decide a request: the desk's people holding the checker's permission, never its maker
    nor anyone whose access the maker asked for (``backoffice.workflow.require_checker``'s rule)."""
    holders = people_holding([permission], account_number)
    return [person for person in holders if may_check(person.pk, maker_id)]


def people_in_roles(role_names: Iterable[str]) -> list[User]:
    return list(
        User.objects.filter(Q(groups__name__in=list(role_names)) | Q(is_superuser=True), is_active=True)
        .distinct()
        .order_by("pk")
    )


# --- what the watcher looks for ------------------------------------------------------------------------


def expiring_batches(now: datetime) -> list[tuple[Batch, datetime]]:
    """Batches not yet approved whose cutoff falls within the expiry warning (the attention list's
    amber items), with that cutoff."""
    unapproved = Batch.objects.filter(
        status__in=[Batch.Status.DRAFT, Batch.Status.PENDING_APPROVAL],
        business_date__gte=clock.business_date(),
    ).select_related("account")
    batches = list(unapproved)
    # The attention list's own rule: only batches that could expire that soon are priced.
    cutoffs = expiring_cutoffs(batches, now)
    return [(batch, cutoffs[batch.pk]) for batch in batches if batch.pk in cutoffs]


def stale_accounts() -> list[Account]:
    """Followed accounts whose snapshot is older than the pages' stale limit (never synced: not yet)."""
    limit = timezone.now() - timedelta(seconds=settings.POSITIONS_STALE_AFTER_SECONDS)
    return list(Account.objects.filter(active=True, snapshot_as_of__lt=limit))


def failing_syncs(times: int) -> list[tuple[Account, int]]:
    """Followed accounts whose last ``times`` finished syncs all failed, each with the id of the last
    sync that succeeded (0 if none): one streak of failures has one such id."""
    found = []
    for account in Account.objects.filter(active=True):
        finished = SyncRun.objects.filter(account=account, finished_at__isnull=False).order_by(
            "-finished_at", "-id"
        )
        last = list(finished.values_list("status", flat=True)[:times])
        if len(last) == times and all(status == SyncRun.Status.FAILED for status in last):
            succeeded = finished.filter(status=SyncRun.Status.SUCCEEDED).values_list("pk", flat=True).first()
            found.append((account, succeeded or 0))
    return found
