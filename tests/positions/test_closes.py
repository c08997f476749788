"""Close requests through four eyes, against the sandbox over real HTTP."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from backoffice.audit.models import AuditEntry
from backoffice.workflow import ActionRefused
from positions import services
from positions.models import CloseRequest, Order, Position
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "audit"])


@pytest.fixture
def synced(sandbox, settings):
    settings.CLEAR_STREET_BASE_URL = sandbox.base_url
    settings.CLEAR_STREET_API_KEY = sandbox.api_key
    account, _ = services.register_account(19816)
    run, _ = services.request_sync(account, enqueue=False)
    services.run_sync(run.pk)
    return account


def aapl(account) -> Position:
    return Position.objects.get(account=account, symbol="AAPL")


def test_request_approve_execute_stores_the_orders(synced, users):
    maker, checker = users["operations"], users["supervisors"]
    position = aapl(synced)
    request = services.request_close(maker, synced, position=position, cancel_orders=True, note="de-risk")
    assert request.status == CloseRequest.Status.PENDING_APPROVAL
    services.approve_close(checker, request.pk)
    request = services.execute_close(request.pk)
    assert request.status == CloseRequest.Status.SUBMITTED, request.error
    (order,) = request.orders.all()
    assert (order.side, order.quantity, order.status, order.order_type) == (
        "SELL",
        position.quantity,
        "PENDING_NEW",
        "MARKET",
    )
    assert order.instrument_id == position.instrument_id and order.time_in_force == "DAY" and order.venue
    call = AuditEntry.objects.get(request_id=request.request_id)
    assert call.method == "DELETE" and call.path.endswith(position.instrument_id)
    assert call.request_body == {"cancel_orders": True}
    assert (call.actor_username, call.approver_username) == (maker.username, checker.username)
    assert (call.subject_type, call.subject_id) == ("close_request", str(request.pk))
    decisions = AuditEntry.objects.filter(
        subject_type="close_request", subject_id=str(request.pk), kind="decision"
    )
    assert [d.action for d in decisions.order_by("id")] == [
        "requested_close",
        "approved",
        "submitting",
        "submitted",
    ]


def test_close_pages_show_the_orders(client, synced, users):
    position = aapl(synced)
    request = services.request_close(users["operations"], synced, position=position)
    services.approve_close(users["supervisors"], request.pk)
    services.execute_close(request.pk)
    client.force_login(users["operations"])
    order_id = Order.objects.get(close_request=request).id
    assert order_id in client.get(reverse("positions:close_detail", args=[request.pk])).content.decode()
    assert order_id in client.get(reverse("positions:detail", args=[position.pk])).content.decode()


@pytest.mark.parametrize("maker_role", ["operations", "superuser"])
def test_nobody_approves_their_own_request(synced, users, maker_role):
    maker = users[maker_role]
    request = services.request_close(maker, synced, position=aapl(synced))
    with pytest.raises(ActionRefused, match="someone else must approve"):
        services.approve_close(maker, request.pk)
    with pytest.raises(ActionRefused, match="someone else must approve"):
        services.reject_close(maker, request.pk, "no")
    request.refresh_from_db()
    assert request.status == CloseRequest.Status.PENDING_APPROVAL


def test_the_database_refuses_a_maker_as_checker(synced, users):
    request = services.request_close(users["operations"], synced, position=aapl(synced))
    request.decided_by = users["operations"]
    with pytest.raises(IntegrityError), transaction.atomic():
        request.save()


def test_roles_that_may_not_request_or_approve(synced, users):
    for role in ("compliance", "supervisors", "norole"):
        with pytest.raises(ActionRefused, match="role does not allow"):
            services.request_close(users[role], synced, position=aapl(synced))
    request = services.request_close(users["operations"], synced, position=aapl(synced))
    for role in ("operations2", "compliance", "norole"):
        with pytest.raises(ActionRefused, match="role does not allow"):
            services.approve_close(users[role], request.pk)


def test_reject_needs_a_reason_and_ends_the_request(synced, users):
    request = services.request_close(users["operations"], synced, position=aapl(synced))
    with pytest.raises(ActionRefused, match="reason"):
        services.reject_close(users["supervisors"], request.pk, "  ")
    services.reject_close(users["supervisors"], request.pk, "position is hedged")
    with pytest.raises(ActionRefused, match="rejected by checker"):
        services.approve_close(users["supervisors2"], request.pk)
    request.refresh_from_db()
    assert request.decision_reason == "position is hedged"


def test_only_the_maker_withdraws_and_a_duplicate_is_refused(synced, users):
    request = services.request_close(users["operations"], synced, position=aapl(synced))
    with pytest.raises(ActionRefused, match="already open"):
        services.request_close(users["operations2"], synced, position=aapl(synced))
    with pytest.raises(ActionRefused, match="Only the person"):
        services.withdraw_close(users["operations2"], request.pk)
    services.withdraw_close(users["operations"], request.pk)
    request.refresh_from_db()
    assert request.status == CloseRequest.Status.WITHDRAWN


def test_close_all_flattens_every_position(synced, users):
    request = services.request_close(users["operations"], synced)
    services.approve_close(users["supervisors"], request.pk)
    request = services.execute_close(request.pk)
    assert request.status == CloseRequest.Status.SUBMITTED
    flat = {p.instrument_id for p in Position.objects.filter(account=synced).exclude(quantity=0)}
    assert {o.instrument_id for o in request.orders.all()} == flat


def test_an_upstream_failure_is_shown_on_the_request(synced, users, sandbox):
    request = services.request_close(users["operations"], synced, position=aapl(synced))
    services.approve_close(users["supervisors"], request.pk)
    sandbox.set_faults({"close_position": {"outage": True}})
    request = services.execute_close(request.pk)
    assert request.status == CloseRequest.Status.FAILED
    assert "503" in request.error and request.request_id
    assert AuditEntry.objects.filter(request_id=request.request_id, status_code=503).exists()


def test_a_lost_answer_is_not_resent(synced, users, sandbox):
    request = services.request_close(users["operations"], synced, position=aapl(synced))
    services.approve_close(users["supervisors"], request.pk)
    sandbox.set_faults({"close_position": {"drop_rate": 1.0}})
    request = services.execute_close(request.pk)
    assert request.status == CloseRequest.Status.UNKNOWN
    assert "may or may not have reached Clear Street" in request.error
    calls = AuditEntry.objects.filter(subject_type="close_request", subject_id=str(request.pk), kind="call")
    assert calls.count() == 1


def test_a_task_redelivered_mid_submit_does_not_send_twice(synced, users):
    request = services.request_close(users["operations"], synced, position=aapl(synced))
    services.approve_close(users["supervisors"], request.pk)
    CloseRequest.objects.filter(pk=request.pk).update(
        status=CloseRequest.Status.SUBMITTING
    )  # worker died here
    request = services.execute_close(request.pk)
    assert request.status == CloseRequest.Status.UNKNOWN and "worker stopped" in request.error
    assert not AuditEntry.objects.filter(
        subject_type="close_request", subject_id=str(request.pk), kind="call"
    ).exists()


@pytest.mark.worker
def test_approval_runs_the_close_on_a_real_worker(synced, users, celery_worker_process, sandbox):
    request = services.request_close(users["operations"], synced, position=aapl(synced))
    services.approve_close(users["supervisors"], request.pk)
    wait_for(lambda: CloseRequest.objects.get(pk=request.pk).status not in CloseRequest.OPEN)
    request.refresh_from_db()
    assert request.status == CloseRequest.Status.SUBMITTED, request.error
    assert request.orders.count() == 1


def test_a_close_request_does_not_wait_for_a_sync_writing_the_account(synced, users, sandbox):
    """A sync holds its new positions' locks on the account until it commits; a close is not held up."""
    import threading
    import time

    from django.db import connection, connections

    from positions.models import SyncRun

    position = aapl(synced)
    sandbox.generate(19816, 3_000)  # the next sync inserts 3,000 positions...
    sandbox.set_faults({"list_positions": {"latency_ms": 1500}})  # ...a page every 1.5 s
    run, _ = services.request_sync(synced, enqueue=False)
    syncing = threading.Thread(target=lambda: (services.run_sync(run.pk), connections.close_all()))
    syncing.start()
    try:
        wait_for(lambda: SyncRun.objects.get(pk=run.pk).pages >= 2, timeout=20)
        time.sleep(0.3)  # the first page is written: its rows hold their locks on the account
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '1s'")
        began = time.monotonic()
        request = services.request_close(users["operations"], synced, position=position)
        assert request.status == CloseRequest.Status.PENDING_APPROVAL
        assert time.monotonic() - began < 1
        assert SyncRun.objects.get(pk=run.pk).is_active, "the sync was still writing"
    finally:
        syncing.join(timeout=60)
        sandbox.clear_faults()
    assert SyncRun.objects.get(pk=run.pk).status == SyncRun.Status.SUCCEEDED
