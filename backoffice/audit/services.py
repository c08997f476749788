"""Writing the audit trail, and proving it was not altered.

Every write goes through ``_append``: its own transaction on the ``audit`` connection, so a
rolled-back business transaction cannot take the row with it, and a PostgreSQL advisory lock so
that concurrent writers extend one hash chain in id order.
"""

from __future__ import annotations

import logging
import math
import queue
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from django.db import connections, transaction
from django.utils import timezone

from backoffice import locks
from backoffice.audit import anchor
from backoffice.audit.anchor import Checkpoint
from backoffice.audit.chain import CONTENT_FIELDS, row_hash
from backoffice.audit.context import SYSTEM, SystemActor, audit_context, current_audit_context
from backoffice.audit.models import AUDIT_DB, GENESIS_HASH, AuditEntry, ChainVerification, PendingCall
from backoffice.audit.redaction import sanitize, sanitize_pair, scrub_optional

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    User = AbstractBaseUser | AnonymousUser
    Actor = User | SystemActor

logger = logging.getLogger(__name__)

__all__ = [
    "NO_ANSWER_RECORDED",
    "SYSTEM",
    "CallRequest",
    "ChainBroken",
    "ChainResult",
    "audit_context",
    "begin_call",
    "calls_recorded_behind",
    "checkpoint_chain",
    "record_decision",
    "record_upstream_call",
    "resolve_interrupted_calls",
    "run_verification",
    "verify_chain",
]

# Any constant will do, as long as nothing else in the project takes the same advisory lock.
CHAIN_LOCK_KEY = 0x0A0D17C4A1

# Paths of the positions API, most specific first ("instructions" would also match {instrument_id}).
_ENDPOINTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), template)
    for pattern, template in (
        (
            r"^/v1/accounts/[^/]+/positions/instructions/[^/]+$",
            "/v1/accounts/{account_id}/positions/instructions/{instruction_id}",
        ),
        (r"^/v1/accounts/[^/]+/positions/instructions$", "/v1/accounts/{account_id}/positions/instructions"),
        (r"^/v1/accounts/[^/]+/positions/[^/]+$", "/v1/accounts/{account_id}/positions/{instrument_id}"),
        (r"^/v1/accounts/[^/]+/positions$", "/v1/accounts/{account_id}/positions"),
    )
)
ENDPOINT_TEMPLATES: tuple[str, ...] = tuple(template for _, template in _ENDPOINTS)


def endpoint_of(path: str) -> str:
    """The path's template, so compliance can filter "every submit" across accounts."""
    bare = path.split("?", 1)[0]
    for pattern, template in _ENDPOINTS:
        if pattern.match(bare):
            return template
    return bare


def _person(user: Actor | None) -> tuple[int | None, str | None]:
    if isinstance(user, SystemActor):
        return None, user.get_username()
    if user is None or not getattr(user, "is_authenticated", False):
        return None, None
    return user.pk, user.get_username()


def _celery_task_id() -> str | None:
    # Calls made inside a Celery task carry its id even when the task did not say so.
    try:
        from celery import current_task
    except ImportError:  # pragma: no cover - celery is a dependency
        return None
    request = getattr(current_task, "request", None) if current_task else None
    return getattr(request, "id", None)


def _attribution(explicit: Mapping[str, Any]) -> dict[str, Any]:
    """Explicit arguments win; ``None`` means "not given", so the audit context fills it."""
    context = current_audit_context()
    values = {
        key: explicit.get(key) if explicit.get(key) is not None else context.get(key) for key in explicit
    }
    actor_id, actor_username = _person(values["actor"])
    approver_id, approver_username = _person(values["approver"])
    subject_id = values["subject_id"]
    return {
        "actor_id": actor_id,
        "actor_username": actor_username,
        "approver_id": approver_id,
        "approver_username": approver_username,
        "account_id": values["account_id"],
        "subject_type": scrub_optional(values["subject_type"]),
        "subject_id": scrub_optional(subject_id),
        "celery_task_id": scrub_optional(values["celery_task_id"] or _celery_task_id()),
        "sync_run_id": values["sync_run_id"],
    }


class _BehindWriter:
    """A thread appending the rows handed to it, in the order handed, on its own connection."""

    def __init__(self, depth: int) -> None:
        self._rows: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.unwritten = 0  # rows whose writing failed (each logged): the calls happened all the same
        self.closed = False
        # Taken by the submitting threads and by close(), never by the writer: a row handed in as
        # the block ends is either queued before the end mark or written by its own thread.
        self._closing = threading.Lock()
        self._thread = threading.Thread(target=self._write, name="audit-writer", daemon=True)
        self._thread.start()

    def _write(self) -> None:
        try:
            while (content := self._rows.get()) is not None:
                try:
                    _append(content)
                except BaseException as exc:  # the first is raised to the caller; none is dropped unsaid
                    self.error = self.error or exc
                    self.unwritten += 1
                    logger.error(
                        "audit row NOT written (%s: %s): %s %s attempt %s, status %s, request_id %s",
                        exc.__class__.__name__,
                        exc,
                        content.get("method"),
                        content.get("path"),
                        content.get("attempt"),
                        content.get("status_code"),
                        content.get("request_id"),
                    )
        finally:
            connections.close_all()

    def submit(self, content: dict[str, Any]) -> None:
        if self.error is not None:
            raise self.error
        with self._closing:
            if not self.closed:
                self._rows.put(content)  # blocks while `depth` rows wait: memory stays bounded
                return
        _append(content)  # a thread still calling after the block ended: its row is written here

    def close(self) -> BaseException | None:
        with self._closing:
            self.closed = True
            self._rows.put(None)
        self._thread.join()
        return self.error


_behind: ContextVar[_BehindWriter | None] = ContextVar("audit_behind", default=None)


@contextmanager
def calls_recorded_behind(depth: int = 2) -> Iterator[None]:
    """Record the upstream calls made in the block from a writer thread, so the next call need not
    wait for the last one's row to be written; the block does not end before every row is.

    Rows keep the order of the calls. A row that cannot be written is raised where the block ends
    (or on the next call), so a caller whose calls' effects commit only after the block (the
    positions sync) never commits an effect whose call went unrecorded. Threads started in the
    block with a copy of its context (``backoffice.prefetch``) hand their rows to the same writer.
    """
    writer = _BehindWriter(depth)
    token = _behind.set(writer)
    try:
        yield
    except BaseException:
        _behind.reset(token)
        if (error := writer.close()) is not None:
            logger.error("%s audit row(s) could not be written: %s", writer.unwritten, error)
        raise
    _behind.reset(token)
    if (error := writer.close()) is not None:
        error.add_note(f"{writer.unwritten} audit row(s) could not be written; each is in the error log")
        raise error


def _append(content: dict[str, Any], *, resolving: int | None = None) -> AuditEntry:
    """Append one row to the chain, in the audit connection's own transaction; ``resolving`` names
    the pending mark the row replaces (deleted in the same transaction, or DoesNotExist if gone)."""
    with transaction.atomic(using=AUDIT_DB):
        with connections[AUDIT_DB].cursor() as cursor:
            # Held to the end of this transaction: the next writer reads our hash after we commit.
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])
        if resolving is not None and not PendingCall.objects.filter(pk=resolving).delete()[0]:
            raise PendingCall.DoesNotExist(f"pending call #{resolving} was already resolved")
        head_id, prev_hash = AuditEntry.objects.order_by("-id").values_list("id", "hash").first() or (
            0,
            GENESIS_HASH,
        )
        # Stamped under the lock, so time order and id order agree.
        content["occurred_at"] = timezone.now()
        # The next id, given here rather than by a sequence: a rolled-back row leaves no gap, so a gap
        # in the ids always means rows went missing (the database holds every INSERT to this rule).
        entry = AuditEntry(id=head_id + 1, **content, prev_hash=prev_hash, hash=row_hash(prev_hash, content))
        _insert(entry)
    return entry


_INSERT_FIELDS = tuple(AuditEntry._meta.concrete_fields)
_INSERT_COLUMNS = ", ".join(str(field.column) for field in _INSERT_FIELDS)
# The table and columns are the model's; the values are parameters.
_INSERT_SQL = (
    f"INSERT INTO {AuditEntry._meta.db_table} ({_INSERT_COLUMNS}) "  # noqa: S608
    f"VALUES ({', '.join(['%s'] * len(_INSERT_FIELDS))})"
)


def _insert(entry: AuditEntry) -> None:
    """INSERT the row with its values bound on the server, as ``save()`` would otherwise do.

    A call's row can carry a whole page of positions (half a megabyte of text), which Django's
    cursor, binding on the client, would escape into the SQL text for the server to parse back.
    """
    connection = connections[AUDIT_DB]
    values = [field.get_db_prep_save(getattr(entry, field.attname), connection) for field in _INSERT_FIELDS]
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_INSERT_SQL, values)
    entry._state.adding = False
    entry._state.db = AUDIT_DB


@dataclass(frozen=True)
class CallRequest:
    """What a call to Clear Street sends, as the audit keeps it (secrets already redacted)."""

    method: str
    path: str
    query: dict[str, Any] | None
    request_headers: dict[str, Any]
    request_body: Any
    attempt: int
    account_id: int | None = None


def _call_content(call: CallRequest) -> dict[str, Any]:
    """The row of a call as it leaves: what was sent, and who and what it was for (the context's)."""
    path = scrub_optional(call.path) or ""
    return {
        "kind": AuditEntry.Kind.CALL.value,
        "method": (scrub_optional(call.method) or "").upper(),
        "path": path,
        "endpoint": endpoint_of(path),
        "query": sanitize(call.query) if call.query else None,
        "request_headers": sanitize(call.request_headers or {}),
        "request_body": sanitize(call.request_body),
        "status_code": None,
        "response_body": None,
        "response_text": None,
        "request_id": None,
        "duration_ms": None,
        "error_class": None,
        "error_message": None,
        "attempt": call.attempt,
        **_attribution(
            {
                "actor": None,
                "approver": None,
                "account_id": call.account_id,
                "subject_type": None,
                "subject_id": None,
                "celery_task_id": None,
                "sync_run_id": None,
            }
        ),
    }


def begin_call(call: CallRequest) -> PendingCall:
    """Put a write on the record before it leaves (see ``PendingCall``); committed at once."""
    content = _call_content(call)
    return PendingCall.objects.create(
        started_at=timezone.now(),
        method=content["method"],
        path=content["path"],
        subject_type=content["subject_type"],
        subject_id=content["subject_id"],
        content=content,
    )


def record_upstream_call(
    call: CallRequest,
    *,
    status_code: int | None,
    response_body: Any,
    response_text: str | None,
    request_id: str | None,
    duration_ms: float,
    error_class: str | None,
    error_message: str | None,
    pending: PendingCall | None = None,
) -> AuditEntry | None:
    """Record one HTTP exchange with Clear Street (or one that never got an answer, or one that ended
    in any exception at all), replacing its pending mark when it had one.

    Returns the row, or None inside ``calls_recorded_behind`` (the row is written by its writer).
    """
    duration = float(duration_ms) if duration_ms is not None else None
    content = pending.content if pending is not None else _call_content(call)
    content = {
        **content,
        "status_code": status_code,
        "response_body": sanitize(response_body),
        # The raw text only when there is no JSON to show: it is the same bytes otherwise.
        "response_text": scrub_optional(response_text) if response_body is None else None,
        "request_id": scrub_optional(request_id),
        "duration_ms": round(duration, 3) if duration is not None and math.isfinite(duration) else None,
        "error_class": scrub_optional(error_class),
        "error_message": scrub_optional(error_message),
    }
    if (writer := _behind.get()) is not None and pending is None:
        writer.submit(content)
        return None
    return _append(content, resolving=pending.pk if pending is not None else None)


NO_ANSWER_RECORDED = "NoAnswerRecorded"


def resolve_interrupted_calls(
    *,
    subject_type: str | None = None,
    subject_id: int | str | None = None,
    older_than: timedelta | None = None,
) -> int:
    """Turn calls left pending by a process that died mid-call into their audit rows.

    For one object (before its work is attempted again: whatever that attempt finds, the record
    says first that the earlier one may have landed), or every mark older than any call can take.
    """
    marks = PendingCall.objects.all()
    if subject_type is not None:
        marks = marks.filter(subject_type=subject_type, subject_id=str(subject_id))
    if older_than is not None:
        marks = marks.filter(started_at__lt=timezone.now() - older_than)
    resolved = 0
    for mark in marks.order_by("id"):
        message = (
            f"sent at {mark.started_at.isoformat()}, no answer recorded: the process stopped before the "
            "answer was recorded, so Clear Street may or may not have acted on it"
        )
        content = {**mark.content, "error_class": NO_ANSWER_RECORDED, "error_message": message}
        try:
            _append(content, resolving=mark.pk)
        except PendingCall.DoesNotExist:
            continue  # another process resolved it first
        resolved += 1
    return resolved


def record_decision(
    *,
    action: str,
    actor: Actor,
    subject_type: str,
    subject_id: int | str,
    account_id: int | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    reason: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    approver: User | None = None,
    celery_task_id: str | None = None,
    sync_run_id: int | None = None,
) -> AuditEntry:
    """Record a decision (drafted, submitted_for_approval, approved, rejected, ...) and who made it.

    A decision names its people itself (``SYSTEM`` for a move no person made): the audit context
    of the work around it (a maker's batch being sent) never stands in for them.
    """
    actor_id, actor_username = _person(actor)
    approver_id, approver_username = _person(approver)
    clean_before, clean_after = sanitize_pair(before, after)
    content: dict[str, Any] = {
        "kind": AuditEntry.Kind.DECISION.value,
        "action": scrub_optional(action),
        "from_state": scrub_optional(from_state),
        "to_state": scrub_optional(to_state),
        "reason": scrub_optional(reason) or "",
        "before": clean_before,
        "after": clean_after,
        **_attribution(
            {
                "actor": None,
                "approver": None,
                "account_id": account_id,
                "subject_type": subject_type,
                "subject_id": subject_id,
                "celery_task_id": celery_task_id,
                "sync_run_id": sync_run_id,
            }
        ),
        "actor_id": actor_id,
        "actor_username": actor_username,
        "approver_id": approver_id,
        "approver_username": approver_username,
    }
    return _append(content)


# --- Verification ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainResult:
    ok: bool
    rows_checked: int
    first_bad_id: int | None = None
    label: str = ""  # the bad row's request_id or action
    expected: str = ""
    stored: str = ""
    problem: str = ""
    detail: str = ""  # a failure told in full (gaps, forks, what the anchor says), or what OK covers
    last_id: int = 0  # the last row walked, and its hash
    last_hash: str = GENESIS_HASH

    @property
    def message(self) -> str:
        if self.ok:
            return f"OK: {self.rows_checked} rows verified" + (f"; {self.detail}" if self.detail else "")
        if self.detail:
            return f"FAILED: {self.detail} ({self.rows_checked} rows checked)"
        return (
            f"FAILED: row id={self.first_bad_id} ({self.label or 'no request_id'}) {self.problem}: "
            f"expected {self.expected}, stored {self.stored} ({self.rows_checked} rows checked)"
        )


class ChainBroken(Exception):
    """The chain does not verify, so it is not checkpointed."""


def _rows_in_id_order(chunk_size: int, after_id: int = 0) -> Iterator[dict[str, Any]]:
    """Every row after ``after_id``, by keyset chunks on the primary key: constant memory on any size."""
    columns = ("id", "prev_hash", "hash", *CONTENT_FIELDS)
    last_id = after_id
    while True:
        chunk = list(AuditEntry.objects.filter(id__gt=last_id).order_by("id").values(*columns)[:chunk_size])
        if not chunk:
            return
        yield from chunk
        last_id = chunk[-1]["id"]


def _missing(first: int, last: int) -> str:
    return f"row id={first} is" if first == last else f"rows id={first} to id={last} are"


def _broken_link(row: dict[str, Any], expected_prev: str, checked: int, label: str) -> ChainResult:
    """A row that does not link to the one before it: a fork when another row claims its predecessor."""
    predecessor = AuditEntry.objects.filter(hash=row["prev_hash"]).values_list("id", flat=True).first()
    rival = (
        AuditEntry.objects.filter(prev_hash=row["prev_hash"])
        .exclude(id=row["id"])
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )
    if predecessor is not None and rival is not None:
        return ChainResult(
            False,
            checked,
            row["id"],
            label,
            detail=f"fork: rows id={rival} and id={row['id']} both claim row id={predecessor} as their "
            f"predecessor (row id={row['id']} ({label or 'no request_id'}) was added beside the chain)",
        )
    return ChainResult(
        False, checked, row["id"], label, expected_prev, row["prev_hash"], "prev_hash does not link"
    )


def _walk(*, after_id: int = 0, after_hash: str = GENESIS_HASH, chunk_size: int = 5000) -> ChainResult:
    """Recompute every row's hash after ``after_id``, and check the ids run on without a gap and
    each row links to the one before it."""
    expected_id, expected_prev = after_id + 1, after_hash
    checked = 0
    for row in _rows_in_id_order(chunk_size, after_id):
        label = row["request_id"] or row["action"] or ""
        if row["id"] != expected_id:
            return ChainResult(
                False,
                checked,
                expected_id,
                label,
                detail=f"gap: {_missing(expected_id, row['id'] - 1)} missing; row id={row['id']} "
                f"({label or 'no request_id'}) follows row id={expected_id - 1}",
            )
        if row["prev_hash"] != expected_prev:
            return _broken_link(row, expected_prev, checked, label)
        computed = row_hash(row["prev_hash"], row)
        if computed != row["hash"]:
            return ChainResult(
                False, checked, row["id"], label, computed, row["hash"], "content hash differs"
            )
        expected_id, expected_prev = row["id"] + 1, row["hash"]
        checked += 1
    return ChainResult(True, checked, last_id=expected_id - 1, last_hash=expected_prev)


def _against_checkpoint(latest: Checkpoint, checkpoints: tuple[Checkpoint, ...]) -> ChainResult | None:
    """What the database lost or rewrote behind the newest checkpoint; None when it holds it whole."""
    head = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    if head < latest.head_id:
        return ChainResult(
            False,
            0,
            head + 1,
            detail=f"{_missing(head + 1, latest.head_id)} missing: {latest.describe()} anchored "
            f"{latest.count} rows up to id={latest.head_id}, the table ends at id={head}; the newest "
            "rows were deleted",
        )
    stored = AuditEntry.objects.filter(id=latest.head_id).values_list("hash", flat=True).first()
    if stored != latest.head_hash:
        # A rewrite at row r changes every hash from r on: the checkpoints below r still match, those
        # at or above it do not, which brackets the rewritten row.
        anchored = sorted((c for c in checkpoints if c.head_id <= latest.head_id), key=lambda c: c.head_id)
        hashes = dict(
            AuditEntry.objects.filter(id__in=[c.head_id for c in anchored]).values_list("id", "hash")
        )
        matching = [c for c in anchored if hashes.get(c.head_id) == c.head_hash]
        below = matching[-1] if matching else None
        first_changed = below.head_id + 1 if below else 1
        upto = min(c.head_id for c in anchored if c.head_id >= first_changed and c not in matching)
        still = f" ({below.describe()} still matches row id={below.head_id})" if below else ""
        return ChainResult(
            False,
            0,
            first_changed,
            detail=f"row id={latest.head_id} does not match {latest.describe()}: anchored "
            f"{latest.head_hash}, stored {stored}; a row from id={first_changed} to id={upto} was "
            f"rewritten and the hashes after it recomputed{still}",
        )
    within = AuditEntry.objects.filter(id__lte=latest.head_id).count()
    if within != latest.count:
        return ChainResult(
            False,
            0,
            latest.head_id,
            detail=f"{latest.describe()} counted {latest.count} rows up to id={latest.head_id}; the table "
            f"holds {within}",
        )
    return None


def verify_chain(*, chunk_size: int = 5000) -> ChainResult:
    """Walk the whole chain (hashes, links, gaps, forks), then hold it against the newest checkpoint."""
    anchors = anchor.read()
    walked = _walk(chunk_size=chunk_size)
    if not walked.ok:
        return walked
    if anchors.failure:
        return replace(walked, ok=False, detail=anchors.failure)
    latest = anchors.latest
    if latest is None:
        return replace(walked, detail=f"not anchored yet (no checkpoint in {anchor.anchor_path()})")
    behind = _against_checkpoint(latest, anchors.checkpoints)
    if behind is not None:
        return replace(behind, rows_checked=walked.rows_checked)
    return replace(walked, detail=f"rows up to id={latest.head_id} match {latest.describe()}")


def checkpoint_chain() -> Checkpoint | None:
    """Anchor the chain's head outside the database (beat, every AUDIT_ANCHOR_INTERVAL_SECONDS).

    Only a chain that still holds the newest checkpoint, and whose rows since link and hash, is
    anchored; otherwise ``ChainBroken`` (the full verification is then run and recorded, for the
    dashboard). Nothing is written while the head has not moved.
    """
    try:
        return _anchor_head()
    except ChainBroken:
        raise  # recorded by the verification it ran
    except Exception as exc:
        # Checkpoints that stop (an anchor file altered, a place that cannot be written) leave the
        # chain unanchored: compliance must see it where a broken chain shows, not in a worker's log.
        message = f"The chain could not be anchored outside the database: {type(exc).__name__}: {exc}"
        now = timezone.now()
        ChainVerification.objects.create(started_at=now, finished_at=now, ok=False, message=message)
        logger.error("audit chain not anchored: %s", message)
        raise ChainBroken(message) from exc


def _anchor_head() -> Checkpoint | None:
    anchors = anchor.read()
    if anchors.failure:
        raise RuntimeError(anchors.failure)
    latest = anchors.latest
    after_id, after_hash, count = (
        (latest.head_id, latest.head_hash, latest.count) if latest else (0, GENESIS_HASH, 0)
    )
    broken = _against_checkpoint(latest, anchors.checkpoints) if latest else None
    walked = broken or _walk(after_id=after_id, after_hash=after_hash)
    if not walked.ok:
        run = run_verification()
        raise ChainBroken(run.message if not run.ok else walked.message)
    if walked.rows_checked == 0:
        return None
    checkpoint = anchor.sign(
        head_id=walked.last_id,
        head_hash=walked.last_hash,
        count=count + walked.rows_checked,
        at=timezone.now(),
    )
    anchor.append(checkpoint)
    return checkpoint


VERIFICATION_LOCK = "audit-chain-verification"


def request_verification(requested_by: str) -> ChainVerification:
    """A person's request for a verification, recorded as waiting; refused while one of theirs (or
    anyone's) is still waiting or running, so nobody can fill the maintenance queue with them."""
    from django.conf import settings

    recent = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    with locks.exclusive(VERIFICATION_LOCK + "-request", 0) as mine:
        unfinished = ChainVerification.objects.filter(ok__isnull=True, started_at__gte=recent).first()
        if not mine or unfinished is not None:
            since = f" since {timezone.localtime(unfinished.started_at):%H:%M}" if unfinished else ""
            by = f" (asked by {unfinished.requested_by})" if unfinished and unfinished.requested_by else ""
            raise VerificationBusy(
                f"A verification is already waiting or running{since}{by}; its result "
                "appears here when it finishes."
            )
        return ChainVerification.objects.create(
            started_at=timezone.now(),
            trigger=ChainVerification.Trigger.MANUAL,
            requested_by=requested_by[:150],
        )


class VerificationBusy(Exception):
    """A verification is already waiting or running."""


def run_verification(
    *,
    trigger: str = ChainVerification.Trigger.SCHEDULED,
    requested_by: str = "",
    run_id: int | None = None,
) -> ChainVerification:
    """Run ``verify_chain`` and keep its result, which the dashboard alert reads. Verifications run
    one at a time: a second waits for the first (each walks the whole chain)."""
    run = ChainVerification.objects.filter(pk=run_id).first() if run_id is not None else None
    if run is None:
        run = ChainVerification.objects.create(
            started_at=timezone.now(), trigger=trigger, requested_by=requested_by[:150]
        )
    with locks.waiting_for(VERIFICATION_LOCK, 0):
        run.started_at = timezone.now()
        run.save(update_fields=["started_at"])
        try:
            result = verify_chain()
        except Exception as exc:
            # A check that could not run is a failed check: compliance must hear of it.
            logger.exception("audit chain verification could not run")
            run.ok, run.message = False, f"Verification could not run: {type(exc).__name__}: {exc}"
        else:
            run.ok, run.rows_checked, run.first_bad_id = result.ok, result.rows_checked, result.first_bad_id
            run.message = result.message
            if not result.ok:
                logger.error("audit chain verification failed: %s", result.message)
        run.finished_at = timezone.now()
        run.save(update_fields=["ok", "rows_checked", "first_bad_id", "message", "finished_at"])
    return run
