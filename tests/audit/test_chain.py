"""Append-only enforcement, the hash chain, verify_audit and the nightly task."""

from __future__ import annotations

import io
import json
import threading
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connections, transaction
from django.template import Context, Template
from django.utils import timezone

from backoffice.audit import services, tasks
from backoffice.audit.chain import canonical_json
from backoffice.audit.models import AuditEntry, ChainVerification
from tests.audit.conftest import AUDIT_DBS, call


@pytest.mark.django_db(databases=AUDIT_DBS)
def test_database_refuses_update_and_delete() -> None:
    entry = call()
    attempts = [
        lambda: AuditEntry.objects.filter(pk=entry.pk).update(status_code=500),
        lambda: AuditEntry.objects.filter(pk=entry.pk).delete(),
        lambda: AuditEntry.objects.bulk_update([_with_status(entry, 500)], ["status_code"]),
        lambda: _raw("UPDATE audit_entry SET status_code = 500 WHERE id = %s", [entry.pk]),
        lambda: _raw("DELETE FROM audit_entry WHERE id = %s", [entry.pk]),
        lambda: _raw("TRUNCATE audit_entry"),
        # Even a statement that matches nothing is refused.
        lambda: _raw("DELETE FROM audit_entry WHERE id = -1"),
    ]
    for attempt in attempts:
        # A savepoint per attempt: the refused statement aborts only its own block.
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(using="audit"):
            attempt()
    row = AuditEntry.objects.get(pk=entry.pk)
    assert (row.status_code, row.hash) == (200, entry.hash)


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
    assert out.getvalue().strip() == f"OK: {total} rows verified"
    assert ChainVerification.objects.latest().ok is True


def _behind_the_apps_back(sql: str, params: list) -> None:
    """What a superuser could do: switch the protection off, write, switch it back on."""
    with connections["audit"].cursor() as cursor:
        cursor.execute("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_no_update_delete")
        try:
            cursor.execute(sql, params)
        finally:
            cursor.execute("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_no_update_delete")


@pytest.mark.django_db(transaction=True, databases=AUDIT_DBS)
def test_verify_audit_names_a_row_altered_behind_the_apps_back() -> None:
    target = call(response_body={"data": [{"status": "REJECTED"}]})
    call()  # a later row, so the tampered one is not simply the last
    original = json.dumps(target.response_body)
    _behind_the_apps_back(
        "UPDATE audit_entry SET response_body = %s::jsonb WHERE id = %s",
        [json.dumps({"data": [{"status": "ACCEPTED"}]}), target.pk],
    )
    try:
        with pytest.raises(CommandError) as failure:
            call_command("verify_audit", stdout=io.StringIO())
        message = str(failure.value)
        assert f"id={target.pk}" in message and target.request_id in message
        assert target.hash in message  # the stored hash, beside the one recomputed
        assert ChainVerification.objects.latest().first_bad_id == target.pk
    finally:
        # Put the row back the same way, so the chain is whole again for every other test.
        _behind_the_apps_back(
            "UPDATE audit_entry SET response_body = %s::jsonb WHERE id = %s", [original, target.pk]
        )
    assert services.verify_chain().ok


@pytest.mark.django_db(transaction=True, databases=AUDIT_DBS)
def test_verify_notices_a_deleted_row() -> None:
    first, gone, after = call(), call(), call()
    columns = ", ".join(f.column for f in AuditEntry._meta.concrete_fields)
    with connections["audit"].cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM audit_entry WHERE id = %s", [gone.pk])
        saved = cursor.fetchone()
    _behind_the_apps_back("DELETE FROM audit_entry WHERE id = %s", [gone.pk])
    try:
        result = services.verify_chain()
        assert (result.ok, result.first_bad_id) == (False, after.pk)
        assert result.expected == first.hash and result.stored == after.prev_hash == gone.hash
    finally:
        # jsonb columns come back from a raw cursor as their JSON text, which casts straight back.
        placeholders = ", ".join(["%s"] * len(saved))
        _raw(f"INSERT INTO audit_entry ({columns}) VALUES ({placeholders})", list(saved))
    assert first.pk < gone.pk < after.pk
    assert services.verify_chain().ok


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
