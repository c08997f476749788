"""Append-only enforcement, the hash chain, verify_audit and the nightly task."""

from __future__ import annotations

import io
import json
import threading
import uuid

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connections, transaction
from django.template import Context, Template
from django.utils import timezone

from backoffice.audit import services, tasks
from backoffice.audit.chain import canonical_json
from backoffice.audit.models import AuditEntry, ChainVerification
from tests import dbroles
from tests.audit.conftest import AUDIT_DBS, Tamper, call


@pytest.mark.django_db(databases=AUDIT_DBS)
def test_the_application_role_may_not_change_a_row() -> None:
    entry = call()
    attempts = [
        lambda: AuditEntry.objects.filter(pk=entry.pk).update(status_code=500),
        lambda: AuditEntry.objects.filter(pk=entry.pk).delete(),
        lambda: AuditEntry.objects.bulk_update([_with_status(entry, 500)], ["status_code"]),
        lambda: _raw("UPDATE audit_entry SET status_code = 500 WHERE id = %s", [entry.pk]),
        lambda: _raw("DELETE FROM audit_entry WHERE id = %s", [entry.pk]),
        lambda: _raw("TRUNCATE audit_entry"),
    ]
    for attempt in attempts:
        # A savepoint per attempt: the refused statement aborts only its own block.
        with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic(using="audit"):
            attempt()
    row = AuditEntry.objects.get(pk=entry.pk)
    assert (row.status_code, row.hash) == (200, entry.hash)


@pytest.mark.django_db(transaction=True, databases=AUDIT_DBS)
def test_even_the_owner_meets_the_append_only_triggers() -> None:
    entry = call()
    head = AuditEntry.objects.get(pk=entry.pk)
    attempts = [
        ("UPDATE audit_entry SET status_code = 500 WHERE id = %s", [entry.pk], "append-only"),
        ("DELETE FROM audit_entry WHERE id = %s", [entry.pk], "append-only"),
        ("TRUNCATE audit_entry", None, "append-only"),
        # Even a statement that matches nothing is refused.
        ("DELETE FROM audit_entry WHERE id = -1", None, "append-only"),
        # A row must extend the head: no second row on one predecessor, no gap in the ids.
        (_COPY_AS_NEW_ROW, [entry.pk + 1, "f" * 64, entry.pk], "must extend the chain's head"),
        (_COPY_AS_NEW_ROW, [entry.pk + 2, entry.hash, entry.pk], "must extend the chain's head"),
    ]
    with dbroles.owner_connection() as conn:
        for sql, params, refusal in attempts:
            with pytest.raises(psycopg.Error, match=refusal):
                conn.execute(sql, params)
    row = AuditEntry.objects.get(pk=entry.pk)
    assert (row.status_code, row.hash) == (head.status_code, head.hash)
    assert AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() == entry.pk


# A copy of row %s (its content and its predecessor's hash) under a new id and hash.
_COPY_AS_NEW_ROW = (
    "INSERT INTO audit_entry SELECT %s, occurred_at, kind, method, path, endpoint, query, request_headers, "
    "request_body, status_code, response_body, response_text, request_id, duration_ms, error_class, "
    "error_message, attempt, action, from_state, to_state, reason, before, after, actor_id, actor_username, "
    "approver_id, approver_username, account_id, subject_type, subject_id, celery_task_id, sync_run_id, "
    "prev_hash, %s FROM audit_entry WHERE id = %s"
)


def test_model_instances_refuse_to_change() -> None:
    entry = AuditEntry(pk=1)
    entry._state.adding = False
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()


def _with_status(entry: AuditEntry, status: int) -> AuditEntry:
    entry.status_code = status
    return entry


def _raw(sql: str, params: list | None = None) -> None:
    with connections["audit"].cursor() as cursor:
        cursor.execute(sql, params)


@pytest.mark.django_db(databases=AUDIT_DBS)
def test_verify_audit_ok() -> None:
    call()
    services.record_decision(action="approved", actor=None, subject_type="batch", subject_id="b-1")
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    total = AuditEntry.objects.count()
    assert out.getvalue().strip().startswith(f"OK: {total} rows verified; ")
    assert ChainVerification.objects.latest().ok is True


@pytest.mark.django_db(transaction=True, databases=AUDIT_DBS)
def test_verify_audit_names_a_row_altered_behind_the_apps_back(tamper: Tamper) -> None:
    target = call(response_body={"data": [{"status": "REJECTED"}]})
    call()  # a later row, so the tampered one is not simply the last
    tamper.sql(
        "UPDATE audit_entry SET response_body = %s::jsonb WHERE id = %s",
        [json.dumps({"data": [{"status": "ACCEPTED"}]}), target.pk],
    )
    with pytest.raises(CommandError) as failure:
        call_command("verify_audit", stdout=io.StringIO())
    message = str(failure.value)
    assert f"id={target.pk}" in message and target.request_id in message
    assert target.hash in message  # the stored hash, beside the one recomputed
    assert ChainVerification.objects.latest().first_bad_id == target.pk


@pytest.mark.django_db(transaction=True, databases=AUDIT_DBS)
def test_verify_names_the_rows_deleted_from_the_middle(tamper: Tamper) -> None:
    first, gone, after = call(), call(), call()
    tamper.sql("DELETE FROM audit_entry WHERE id = %s", [gone.pk])
    result = services.verify_chain()
    assert (result.ok, result.first_bad_id) == (False, gone.pk)
    assert result.message.startswith(
        f"FAILED: gap: row id={gone.pk} is missing; row id={after.pk} ({after.request_id}) follows row "
        f"id={first.pk}"
    )


@pytest.mark.django_db(transaction=True, databases=AUDIT_DBS)
def test_chain_stays_whole_under_concurrent_writers() -> None:
    marker = uuid.uuid4().hex
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(name: str) -> None:
        try:
            start.wait()
            for i in range(25):
                call(request_id=f"{marker}-{name}-{i}", subject_type="sync_run", subject_id=marker)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    rows = list(AuditEntry.objects.filter(subject_id=marker).order_by("id"))
    assert len(rows) == 50
    assert len({row.prev_hash for row in rows}) == 50  # no two rows claim the same predecessor
    assert services.verify_chain().ok


def test_canonical_json_is_stable() -> None:
    assert canonical_json({"b": 1, "a": [1.0, -0.0, 1e20, "x"]}) == '{"a":[1,0,1E+20,"x"],"b":1}'
    assert canonical_json(100000000000000000000) == canonical_json(1e20)


@pytest.mark.django_db(databases=AUDIT_DBS)
def test_nightly_task_records_its_result() -> None:
    call()
    result = tasks.verify_chain()
    run = ChainVerification.objects.get(pk=result["id"])
    assert run.ok is True and run.finished_at is not None and run.rows_checked == result["rows_checked"] > 0
    assert run.trigger == "scheduled"


@pytest.mark.django_db(databases=AUDIT_DBS)
def test_failed_verification_raises_the_dashboard_alert() -> None:
    template = Template("{% load audit_tags %}{% audit_alert %}")
    now = timezone.now()
    ChainVerification.objects.create(started_at=now, finished_at=now, ok=True, message="OK: 3 rows verified")
    assert "integrity" not in template.render(Context({"can": {"audit": True}}))
    ChainVerification.objects.create(
        started_at=now, finished_at=now, ok=False, first_bad_id=42, message="FAILED: row id=42 <b>"
    )
    html = template.render(Context({"can": {"audit": True}}))
    assert "Audit trail integrity check failed" in html and "row #42" in html and "&lt;b&gt;" in html
    assert "integrity" not in template.render(Context({"can": {}}))
