"""Read side of the audit trail: the filtered, keyset-paged list, exports, per-object rows."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from django.core.cache import cache
from django.db.models import BooleanField, F, Q, QuerySet
from django.db.models.expressions import RawSQL

from backoffice import dbrouter
from backoffice.audit.models import AUDIT_DB, AuditEntry, ChainVerification

# Columns that can be large; the list and per-object tables never need them.
BODY_FIELDS = (
    "request_headers",
    "request_body",
    "response_body",
    "response_text",
    "before",
    "after",
    "query",
)

STATUS_CLASSES = {"2xx": 2, "3xx": 3, "4xx": 4, "5xx": 5}
NO_RESPONSE = "none"


@dataclass(frozen=True)
class AuditFilters:
    since: dt.datetime | None = None  # inclusive
    until: dt.datetime | None = None  # exclusive
    account_id: int | None = None
    username: str = ""
    endpoint: str = ""
    path_prefix: str = ""
    method: str = ""
    status_class: str = ""
    request_id: str = ""
    subject_type: str = ""
    subject_id: str = ""
    kind: str = ""


def filtered_entries(filters: AuditFilters) -> QuerySet[AuditEntry]:
    """Each filter is an equality or range on a column that leads one of the table's indexes."""
    qs = AuditEntry.objects.all()
    if filters.since is not None:
        qs = qs.filter(occurred_at__gte=filters.since)
    if filters.until is not None:
        qs = qs.filter(occurred_at__lt=filters.until)
    if filters.account_id is not None:
        qs = qs.filter(account_id=filters.account_id)
    if filters.username:
        qs = qs.filter(actor_username=filters.username)
    if filters.endpoint:
        qs = qs.filter(endpoint=filters.endpoint)
    if filters.path_prefix:
        qs = qs.filter(path__startswith=filters.path_prefix)
    if filters.method:
        qs = qs.filter(method=filters.method)
    if filters.status_class == NO_RESPONSE:
        qs = qs.filter(kind=AuditEntry.Kind.CALL, status_code__isnull=True)
    elif filters.status_class in STATUS_CLASSES:
        # Spelled like the expression index audit_entry_status_class_idx, so the planner uses it.
        qs = qs.alias(status_hundreds=F("status_code") / 100).filter(
            status_hundreds=STATUS_CLASSES[filters.status_class]
        )
    if filters.request_id:
        qs = qs.filter(request_id=filters.request_id)
    if filters.subject_type:
        qs = qs.filter(subject_type=filters.subject_type)
    if filters.subject_id:
        qs = qs.filter(subject_id=filters.subject_id)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    return qs


# --- Keyset pagination ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    occurred_at: dt.datetime
    id: int

    def encode(self) -> str:
        return (
            base64.urlsafe_b64encode(f"{_micros(self.occurred_at)}.{self.id}".encode()).decode().rstrip("=")
        )

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """Raises ValueError on anything that is not a cursor we produced."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
            micros_text, id_text = raw.split(".")
            micros, entry_id = int(micros_text), int(id_text)
            occurred_at = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=micros)
        except (ValueError, UnicodeDecodeError, OverflowError) as exc:
            raise ValueError("not a page cursor") from exc
        return cls(occurred_at, entry_id)


def _micros(moment: dt.datetime) -> int:
    # Integer arithmetic: a float timestamp would lose the microseconds that tell rows apart.
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _row_compare(operator: Literal["<", ">"], cursor: Cursor) -> RawSQL:
    # A row-value comparison is an index condition on (..., occurred_at, id); the equivalent
    # "a < x OR (a = x AND id < y)" would be a filter applied after reading from the top.
    return RawSQL(  # noqa: S611 - the operator is one of our two constants; values are parameters
        f'("audit_entry"."occurred_at", "audit_entry"."id") {operator} (%s, %s)',
        (cursor.occurred_at, cursor.id),
        output_field=BooleanField(),
    )


@dataclass(frozen=True)
class AuditPage:
    entries: list[Any]  # AuditEntry rows, or named tuples of LIST_COLUMNS for the list page
    next_cursor: str | None  # older rows
    prev_cursor: str | None  # newer rows


# What the list page shows of a row: read as named tuples, since building a hundred model instances
# cost more than the query that found them.
LIST_COLUMNS = (
    "pk",
    "occurred_at",
    "kind",
    "method",
    "path",
    "status_code",
    "error_class",
    "error_message",
    "request_id",
    "duration_ms",
    "attempt",
    "actor_username",
    "approver_username",
    "account_id",
    "subject_type",
    "subject_id",
    "action",
    "from_state",
    "to_state",
)


def audit_page(
    filters: AuditFilters,
    *,
    per_page: int,
    after: Cursor | None = None,
    before: Cursor | None = None,
    columns: tuple[str, ...] | None = None,
) -> AuditPage:
    """One page, newest first, in one query: ``after`` pages to older rows, ``before`` to newer.
    With ``columns`` (``LIST_COLUMNS``), rows are named tuples of those; else entries without bodies."""
    # A page may be a moment old: from the read replica when one serves this request.
    qs: QuerySet[Any] = filtered_entries(filters).defer(*BODY_FIELDS).using(dbrouter.read_alias(AUDIT_DB))
    if columns is not None:
        qs = qs.values_list(*columns, named=True)
    if before is not None:
        rows = list(qs.filter(_row_compare(">", before)).order_by("occurred_at", "id")[: per_page + 1])
        more_newer = len(rows) > per_page
        entries = list(reversed(rows[:per_page]))
        has_newer, has_older = more_newer, True
    else:
        if after is not None:
            qs = qs.filter(_row_compare("<", after))
        rows = list(qs.order_by("-occurred_at", "-id")[: per_page + 1])
        entries = rows[:per_page]
        has_newer, has_older = after is not None, len(rows) > per_page
    return AuditPage(
        entries=entries,
        next_cursor=_cursor_of(entries[-1]) if has_older and entries else None,
        prev_cursor=_cursor_of(entries[0]) if has_newer and entries else None,
    )


def _cursor_of(entry: Any) -> str:
    return Cursor(entry.occurred_at, entry.pk).encode()


def export_rows(filters: AuditFilters, *, chunk_size: int = 2000) -> Any:
    """Every matching row, newest first, streamed from a server-side cursor."""
    qs = filtered_entries(filters).using(dbrouter.read_alias(AUDIT_DB))
    return qs.order_by("-occurred_at", "-id").iterator(chunk_size=chunk_size)


# --- Per-object rows, for the pages of the objects themselves --------------------------------------


def entries_for(subject_type: str, subject_id: int | str, *, limit: int = 200) -> list[AuditEntry]:
    """The audit rows of one business object, newest first (its page checked the permission)."""
    qs = AuditEntry.objects.filter(subject_type=subject_type, subject_id=str(subject_id))
    return list(qs.defer(*BODY_FIELDS).order_by("-occurred_at", "-id")[:limit])


def entries_for_subjects(subject_type: str, subject_ids: list[int] | list[str]) -> list[AuditEntry]:
    """Every row of several objects of one kind, oldest first (for a timeline), without the bodies."""
    if not subject_ids:
        return []
    qs = AuditEntry.objects.filter(subject_type=subject_type, subject_id__in=[str(i) for i in subject_ids])
    return list(qs.defer(*BODY_FIELDS).order_by("id"))


def entries_for_account(account_id: int, *, limit: int = 200) -> list[AuditEntry]:
    qs = AuditEntry.objects.filter(account_id=account_id)
    return list(qs.defer(*BODY_FIELDS).order_by("-occurred_at", "-id")[:limit])


def entry(entry_id: int) -> AuditEntry | None:
    return AuditEntry.objects.filter(pk=entry_id).first()


# --- Chain verification -----------------------------------------------------------------------------


def latest_verification() -> ChainVerification | None:
    """The most recent finished run (a run still in progress says nothing yet)."""
    return ChainVerification.objects.filter(finished_at__isnull=False).order_by("-started_at", "-id").first()


# The list's chain pill reads the latest result through the process's cache: one round trip fewer on
# every page. A run that finishes clears it here (apps.py); other processes see it within the TTL.
CHAIN_STATUS_CACHE_KEY = "audit:latest-verification"
CHAIN_STATUS_TTL_SECONDS = 5


def chain_status() -> ChainVerification | None:
    """``latest_verification``, at most ``CHAIN_STATUS_TTL_SECONDS`` old."""
    cached: tuple[ChainVerification | None] | None = cache.get(CHAIN_STATUS_CACHE_KEY)
    if cached is None:
        cached = (latest_verification(),)  # a tuple, so "none yet" is cached too
        cache.set(CHAIN_STATUS_CACHE_KEY, cached, CHAIN_STATUS_TTL_SECONDS)
    return cached[0]


def forget_chain_status(**_: Any) -> None:
    cache.delete(CHAIN_STATUS_CACHE_KEY)


def recent_verifications(limit: int = 20) -> list[ChainVerification]:
    return list(ChainVerification.objects.order_by("-started_at", "-id")[:limit])


def entries_touching(
    account_id: int, *, path_fragment: str, subjects: dict[str, list[int]], limit: int = 200
) -> list[AuditEntry]:
    """Rows about one thing in an account: calls whose path names it, and rows of the requests about it."""
    condition = Q(path__contains=path_fragment)
    for subject_type, ids in subjects.items():
        if ids:
            condition |= Q(subject_type=subject_type, subject_id__in=[str(i) for i in ids])
    qs = AuditEntry.objects.filter(condition, account_id=account_id).defer(*BODY_FIELDS)
    return list(qs.order_by("-occurred_at", "-id")[:limit])
