"""The audit trail: one append-only, hash-chained row per upstream call or human decision.

``AuditEntry`` is unmanaged: its table, indexes and append-only triggers are created by raw SQL in
the app's first migration. That keeps the table out of Django's ``flush`` (which TRUNCATEs managed
tables between transactional tests and would trip the trigger), and lets the database, not the
application, refuse every UPDATE, DELETE and TRUNCATE.

The table has no foreign keys on purpose: rows are written through their own connection (the
``audit`` alias) and must commit even when the business rows they mention never do.
"""

# NULL means "does not apply to this kind of row" (no status on a timeout, no path on a decision),
# which an empty string would blur; the hash covers the difference.

from __future__ import annotations

from typing import Any, TypeVar

from django.db import models

AUDIT_DB = "audit"
GENESIS_HASH = "0" * 64
# Tables the application role may only INSERT into and SELECT from (backoffice.dbroles).
APPEND_ONLY_TABLES: tuple[str, ...] = ("audit_entry",)


# How a row is read by people and programs: what it is about first, its bodies after, its link in
# the chain last (the audit list, the CSV export and the API all use these).
SUMMARY_FIELDS: tuple[str, ...] = (
    "id",
    "occurred_at",
    "kind",
    "method",
    "path",
    "endpoint",
    "status_code",
    "request_id",
    "duration_ms",
    "error_class",
    "error_message",
    "attempt",
    "action",
    "from_state",
    "to_state",
    "reason",
    "actor_id",
    "actor_username",
    "approver_id",
    "approver_username",
    "account_id",
    "subject_type",
    "subject_id",
    "celery_task_id",
    "sync_run_id",
)
BODY_FIELDS: tuple[str, ...] = (
    "query",
    "request_headers",
    "request_body",
    "response_body",
    "response_text",
    "before",
    "after",
)
CHAIN_FIELDS: tuple[str, ...] = ("prev_hash", "hash")


M = TypeVar("M", bound=models.Model)


class AuditManager(models.Manager[M]):
    """Reads and writes go through the audit connection, wherever the caller's transaction stands."""

    def get_queryset(self) -> models.QuerySet[M]:
        return super().get_queryset().using(AUDIT_DB)


class AuditEntry(models.Model):
    class Kind(models.TextChoices):
        CALL = "call", "Upstream call"
        DECISION = "decision", "Decision"

    occurred_at = models.DateTimeField()
    kind = models.TextField(choices=Kind.choices)

    # Upstream call
    method = models.TextField(null=True)
    path = models.TextField(null=True)
    endpoint = models.TextField(null=True, help_text="The path's template, e.g. /v1/accounts/{account_id}/…")
    query = models.JSONField(null=True)
    request_headers = models.JSONField(null=True)
    request_body = models.JSONField(null=True)
    status_code = models.IntegerField(null=True)
    response_body = models.JSONField(null=True)
    response_text = models.TextField(null=True, help_text="The raw body when it was not JSON.")
    request_id = models.TextField(null=True)
    duration_ms = models.FloatField(null=True)
    error_class = models.TextField(null=True)
    error_message = models.TextField(null=True)
    attempt = models.IntegerField(null=True)

    # Human decision
    action = models.TextField(null=True)
    from_state = models.TextField(null=True)
    to_state = models.TextField(null=True)
    reason = models.TextField(null=True)
    before = models.JSONField(null=True)
    after = models.JSONField(null=True)

    # Attribution, as plain values (no foreign keys: see the module docstring)
    actor_id = models.BigIntegerField(null=True)
    actor_username = models.TextField(null=True)
    approver_id = models.BigIntegerField(null=True)
    approver_username = models.TextField(null=True)
    account_id = models.BigIntegerField(null=True)
    subject_type = models.TextField(null=True)
    subject_id = models.TextField(null=True)
    celery_task_id = models.TextField(null=True)
    sync_run_id = models.BigIntegerField(null=True)

    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditManager["AuditEntry"]()

    class Meta:
        managed = False
        db_table = "audit_entry"
        ordering = ("-occurred_at", "-id")
        default_permissions = ("view",)
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        if self.kind == self.Kind.DECISION:
            return f"#{self.pk} {self.action} {self.subject_type}:{self.subject_id}"
        return f"#{self.pk} {self.method} {self.path} {self.status_code or self.error_class or ''}".rstrip()

    # Friendly guards; the database triggers are the real enforcement.
    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionError("Audit entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("Audit entries are append-only.")

    @property
    def status_class(self) -> str:
        if self.kind == self.Kind.DECISION:
            return ""
        if self.status_code is None:
            return "none"
        return f"{self.status_code // 100}xx"


class ChainVerification(models.Model):
    """One run of the hash-chain check (nightly, from the command, or on a compliance request)."""

    class Trigger(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        MANUAL = "manual", "Requested from the audit pages"
        COMMAND = "command", "verify_audit command"

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(null=True, help_text="Empty while running.")
    rows_checked = models.BigIntegerField(default=0)
    first_bad_id = models.BigIntegerField(null=True, blank=True)
    message = models.TextField(blank=True, default="")
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.SCHEDULED)
    requested_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ("-started_at", "-id")
        get_latest_by = ("started_at", "id")

    def __str__(self) -> str:
        state = "running" if self.ok is None else ("ok" if self.ok else "FAILED")
        return f"chain verification {self.started_at:%Y-%m-%d %H:%M} {state}"


class PendingCall(models.Model):
    """A write sent to Clear Street whose audit row is not written yet.

    Committed (through the audit connection) before the request leaves, and replaced by the call's
    audit row, in one transaction, when the call returns or fails. One left behind means the process
    died mid-call: the request may have reached Clear Street and its answer is lost. The next
    attempt at the same work (or the sweeper, once no worker can still be waiting) turns it into an
    audit row that says so, "sent, no answer recorded", so the record still holds every attempt.
    """

    started_at = models.DateTimeField()
    method = models.TextField()
    path = models.TextField()
    subject_type = models.TextField(null=True)
    subject_id = models.TextField(null=True)
    # The audit row's content as it stood when the request left (attribution included).
    content = models.JSONField()

    objects = AuditManager["PendingCall"]()

    class Meta:
        ordering = ("started_at", "id")
        indexes = [models.Index(fields=["subject_type", "subject_id"])]

    def __str__(self) -> str:
        return f"{self.method} {self.path} sent {self.started_at:%Y-%m-%d %H:%M:%S}, no answer recorded yet"
