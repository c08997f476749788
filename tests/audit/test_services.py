"""Writing audit rows: own transaction, attribution, redaction, values that survive the round trip."""

from __future__ import annotations

import contextvars
import datetime as dt
import decimal
import json
import uuid

import pytest
from django.db import connections, transaction

from backoffice.audit import services
from backoffice.audit.chain import row_hash
from backoffice.audit.context import audit_context
from backoffice.audit.models import AuditEntry
from backoffice.audit.redaction import REDACTED
from tests.audit.conftest import AUDIT_DBS, call

SECRET_KEY_VALUE = "sk-live-7f3a9c2e41b8d6"


class BusinessFailure(Exception):
    pass


@pytest.mark.django_db(transaction=True, databases=AUDIT_DBS)
def test_row_survives_rollback_of_the_business_transaction() -> None:
    request_id = f"req-{uuid.uuid4()}"
    with pytest.raises(BusinessFailure), transaction.atomic():
        call(request_id=request_id)
        raise BusinessFailure
    # Committed for everyone, including the business connection that rolled back.
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_entry WHERE request_id = %s", [request_id])
        assert cursor.fetchone() == (1,)


@pytest.mark.django_db(databases=AUDIT_DBS)
def test_call_row_holds_everything_the_issue_lists(make_user) -> None:
    maker, checker = make_user("operations"), make_user("supervisors")
    entry = call(
        method="post",
        path="/v1/accounts/100/positions/instructions",
        query=None,
        request_body=[{"instruction_id": "i-1", "quantity": decimal.Decimal("3")}],
        status_code=207,
        response_body={"data": [{"status": "ACCEPTED"}]},
        request_id="req-full-row-" + uuid.uuid4().hex,
        duration_ms=41.23456,
        attempt=2,
        actor=maker,
        approver=checker,
        account_id=100,
        subject_type="batch",
        subject_id=7,
        celery_task_id="task-1",
        sync_run_id=None,
    )
    row = AuditEntry.objects.get(pk=entry.pk)
    assert row.kind == "call" and row.method == "POST"
    assert row.endpoint == "/v1/accounts/{account_id}/positions/instructions"
    assert row.request_body == [{"instruction_id": "i-1", "quantity": "3"}]
    assert row.status_code == 207 and row.response_body == {"data": [{"status": "ACCEPTED"}]}
    assert row.response_text is None
    assert row.duration_ms == pytest.approx(41.235) and row.attempt == 2
    assert (row.actor_id, row.actor_username) == (maker.pk, maker.username)
    assert (row.approver_id, row.approver_username) == (checker.pk, checker.username)
    assert (row.account_id, row.subject_type, row.subject_id) == (100, "batch", "7")
    assert row.celery_task_id == "task-1"
    assert row.hash == row_hash(row.prev_hash, {f: getattr(row, f) for f in _content_fields()})


def _content_fields() -> tuple[str, ...]:
    from backoffice.audit.chain import CONTENT_FIELDS

    return CONTENT_FIELDS


@pytest.mark.django_db(databases=AUDIT_DBS)
def test_network_error_and_non_json_body() -> None:
    timeout = call(
        status_code=None,
        response_body=None,
        error_class="ConnectTimeout",
        error_message="timed out",
        attempt=3,
    )
    assert (timeout.status_code, timeout.error_class, timeout.status_class) == (
        None,
        "ConnectTimeout",
        "none",
    )
    html = call(status_code=502, response_body=None, response_text="<html>Bad gateway</html>")
    assert AuditEntry.objects.get(pk=html.pk).response_text == "<html>Bad gateway</html>"


@pytest.mark.django_db(databases=AUDIT_DBS)
def test_context_fills_what_the_call_does_not_say(make_user) -> None:
    maker, other = make_user("operations"), make_user("operations")
    with audit_context(actor=maker, account_id=5, subject_type="batch", subject_id=11):
        with audit_context(sync_run_id=9):
            inner = call()
        explicit = call(actor=other, subject_type="cancel_request", subject_id="c-1")
    outside = call()
    assert (inner.actor_username, inner.account_id, inner.subject_id, inner.sync_run_id) == (
        maker.username,
        5,
        "11",
        9,
    )
    assert (explicit.actor_username, explicit.subject_type, explicit.subject_id, explicit.account_id) == (
        other.username,
        "cancel_request",
        "c-1",
        5,
    )
    assert (outside.actor_id, outside.subject_type, outside.account_id) == (None, None, None)


def test_context_rejects_unknown_keys() -> None:
    with pytest.raises(TypeError), audit_context(user=None):
        pass


@pytest.mark.django_db(databases=AUDIT_DBS)
def test_decision_row(make_user) -> None:
    checker = make_user("supervisors")
    entry = services.record_decision(
        action="rejected",
        actor=checker,
        subject_type="batch",
        subject_id=uuid.uuid4().hex,
        account_id=100,
        from_state="PENDING_APPROVAL",
        to_state="REJECTED",
        reason="Wrong strike",
        before={"state": "PENDING_APPROVAL"},
        after={"state": "REJECTED", "at": dt.datetime(2025, 1, 17, 15, 0, tzinfo=dt.UTC)},
    )
    row = AuditEntry.objects.get(pk=entry.pk)
    assert (row.kind, row.action, row.from_state, row.to_state, row.reason) == (
        "decision",
        "rejected",
        "PENDING_APPROVAL",
        "REJECTED",
        "Wrong strike",
    )
    assert row.after == {"state": "REJECTED", "at": "2025-01-17T15:00:00+00:00"}
    assert row.actor_username == checker.username and row.method is None


@pytest.mark.django_db(databases=AUDIT_DBS)
def test_secrets_never_stored(settings) -> None:
    settings.CLEAR_STREET_API_KEY = SECRET_KEY_VALUE
    entry = call(
        path=f"/v1/accounts/100/positions?api_key={SECRET_KEY_VALUE}",
        query={"page_token": "cursor-2", "access_token": "t0k3n", "note": f"k={SECRET_KEY_VALUE}"},
        request_headers={
            "Authorization": f"Bearer {SECRET_KEY_VALUE}",
            "X-Api-Key": SECRET_KEY_VALUE,
            "Cookie": "session=abc",
            "Accept": "application/json",
        },
        request_body={"password": "hunter2", "nested": [{"client_secret": "s3", "memo": SECRET_KEY_VALUE}]},
        response_body={"next_page_token": "cursor-3", "refresh_token": "r3", "echo": SECRET_KEY_VALUE},
        error_message=f"401 for key {SECRET_KEY_VALUE}",
    )
    with connections["audit"].cursor() as cursor:
        cursor.execute("SELECT row_to_json(a)::text FROM audit_entry a WHERE id = %s", [entry.pk])
        stored = cursor.fetchone()[0]
    for secret in (SECRET_KEY_VALUE, "hunter2", "t0k3n", "session=abc", '"s3"', '"r3"'):
        assert secret not in stored
    row = AuditEntry.objects.get(pk=entry.pk)
    assert row.request_headers == {
        "Authorization": REDACTED,
        "X-Api-Key": REDACTED,
        "Cookie": REDACTED,
        "Accept": "application/json",
    }
    assert row.request_body == {
        "password": REDACTED,
        "nested": [{"client_secret": REDACTED, "memo": REDACTED}],
    }
    # Pagination cursors are not credentials: compliance needs them to know which page was read.
    assert row.query["page_token"] == "cursor-2" and row.response_body["next_page_token"] == "cursor-3"
    assert row.error_message == f"401 for key {REDACTED}"


TRICKY_VALUES = {
    "big_float": 1e20,
    "tiny": 1e-7,
    "huge": 1e300,
    "negative_zero": -0.0,
    "big_int": 2**70,
    "decimal": decimal.Decimal("1.2300"),
    "nan": float("nan"),
    "nul": "a\x00b",
    "unicode": "Zürich ✓ \u2028 😀",
    "surrogate": "bad \udc80 byte",
    "bytes": b"\xff\xfe raw",
    "when": dt.datetime(2025, 1, 1, 9, 30, tzinfo=dt.UTC),
    "uuid": uuid.UUID(int=1),
    "tuple": (1, 2.5, None, True),
    1: "int key",
    "nested": {"deep": [{"x": [0.1, 0.2, 0.30000000000000004]}]},
}


@pytest.mark.django_db(databases=AUDIT_DBS)
def test_hash_survives_the_database_round_trip() -> None:
    entry = call(request_body=TRICKY_VALUES, response_body=TRICKY_VALUES, duration_ms=float("inf"))
    row = AuditEntry.objects.get(pk=entry.pk)
    assert row.hash == entry.hash
    assert row_hash(row.prev_hash, {f: getattr(row, f) for f in _content_fields()}) == row.hash
    assert json.loads(json.dumps(row.request_body))["nul"] == "a\ufffdb"


@pytest.mark.django_db(transaction=True, databases=AUDIT_DBS)
def test_calls_recorded_behind_are_all_written_in_call_order_before_the_block_ends() -> None:
    ids = [f"req-{uuid.uuid4()}" for _ in range(6)]
    with services.calls_recorded_behind():
        for request_id in ids:
            assert call(request_id=request_id) is None, "the writer thread writes it"
    rows = list(
        AuditEntry.objects.filter(request_id__in=ids).order_by("id").values_list("request_id", flat=True)
    )
    assert rows == ids
    assert services.verify_chain().ok


@pytest.mark.django_db(transaction=True, databases=AUDIT_DBS)
def test_a_row_the_writer_cannot_write_is_raised_where_the_block_ends(monkeypatch) -> None:
    real_append = services._append

    def fail_on_the_second(content):
        if content["request_id"] == "req-second":
            raise RuntimeError("audit database is read-only")
        return real_append(content)

    monkeypatch.setattr(services, "_append", fail_on_the_second)
    with pytest.raises(RuntimeError, match="read-only"), services.calls_recorded_behind():
        call(request_id="req-first")
        call(request_id="req-second")
    assert AuditEntry.objects.filter(request_id="req-first").exists()


@pytest.mark.django_db(transaction=True, databases=AUDIT_DBS)
def test_a_call_recorded_after_the_block_ended_is_still_written() -> None:
    """A thread that outlives the block (a fetcher still finishing) loses no row."""
    with services.calls_recorded_behind():
        straggler = contextvars.copy_context()  # what a thread started in the block runs in
        call(request_id="req-inside")
    straggler.run(call, request_id="req-straggler")
    assert list(
        AuditEntry.objects.filter(request_id__in=["req-inside", "req-straggler"])
        .order_by("id")
        .values_list("request_id", flat=True)
    ) == ["req-inside", "req-straggler"]
    assert services.verify_chain().ok
