"""/metrics: who may scrape it, and each family saying something true after real work."""

from __future__ import annotations

import math
import uuid

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from backoffice import queues
from backoffice.audit import services as audit
from backoffice.celery import app
from backoffice.tasks import health_check
from backoffice.telemetry.metrics import project_queues
from instructions import services as instructions
from instructions.models import Batch
from instructions.services import RowSpec
from positions import services as positions
from tests.fixtures.desk import option

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "audit"])

TOKEN = "metrics-token-" + "x" * 24


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_metrics_are_off_without_a_token(client, users, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics")
    assert response.status_code == 404
    assert b"METRICS_TOKEN" in response.content
    client.force_login(users["superuser"])
    assert client.get("/metrics").status_code == 404, "a session never opens it"


def test_metrics_answer_the_bearer_token_and_nothing_else(client, users, settings):
    settings.METRICS_TOKEN = TOKEN
    response = client.get("/metrics")
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
    for header in (f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN[:-1]}"):
        assert client.get("/metrics", HTTP_AUTHORIZATION=header).status_code == 401, header
    client.force_login(users["admins"])
    assert client.get("/metrics").status_code == 401, "a session is not a token"
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}").status_code == 200
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def test_http_latency_is_by_route_name_and_status(client, users, settings):
    settings.METRICS_TOKEN = TOKEN
    before = scrape(client)
    client.force_login(users["operations"])
    for _ in range(3):
        assert client.get("/positions/").status_code == 200
    assert client.get("/positions/999999999/").status_code == 404
    assert client.get("/no/such/page/").status_code == 404
    samples = scrape(client)

    def count(labels, samples=samples):
        return value(samples, "backoffice_http_request_duration_seconds_count", **labels) or 0

    page = {"view": "positions:list", "method": "GET", "status": "200"}
    assert count(page) - count(page, before) == 3
    missing = {"view": "positions:detail", "method": "GET", "status": "404"}
    assert count(missing) - count(missing, before) == 1
    # An unrouted path is one label value, never the path itself.
    unrouted = {"view": "<unresolved>", "method": "GET", "status": "404"}
    assert count(unrouted) - count(unrouted, before) == 1
    assert not any("no/such" in str(key) for key in samples)
    assert value(samples, "backoffice_http_request_duration_seconds_bucket", **page, le="+Inf") == count(page)


def test_every_family_after_a_sync_a_pending_batch_a_failed_batch_and_a_verification(
    client, desk, users, sandbox, settings
):
    settings.METRICS_TOKEN = TOKEN
    before = scrape(client)
    # The desk fixture synced 122503 just now; 48213 is followed and was never synced.
    positions.register_account(48213)
    run, _ = positions.request_sync(desk, enqueue=False)
    positions.run_sync(run.pk)
    batch = instructions.create_batch(
        users["operations"], desk, [RowSpec(option(desk, "AAPL", put_call="C").pk, "EXERCISE", 1)]
    )
    instructions.submit_for_approval(users["operations"], batch.pk)
    Batch.objects.create(
        account=desk,
        business_date=batch.business_date,
        created_by=users["operations2"],
        status=Batch.Status.FAILED,
    )
    queue = app.conf.task_default_queue
    for _ in range(3):
        health_check.delay(str(uuid.uuid4()))
    audit.run_verification(trigger="command")

    samples = scrape(client)

    # Sync freshness per active account.
    age = value(samples, "backoffice_positions_last_good_sync_age_seconds", account="122503")
    assert age is not None and 0 <= age < 60
    assert value(samples, "backoffice_positions_last_good_sync_age_seconds", account="48213") == math.inf
    assert value(samples, "backoffice_positions_last_sync_failed", account="122503") == 0
    assert (
        value(samples, "backoffice_positions_stale_after_seconds") == settings.POSITIONS_STALE_AFTER_SECONDS
    )

    # The batch awaiting approval and the minutes to its cutoff (the sandbox's day, 10:30 ET; the
    # firm's cutoff is 16:30 ET, so six hours).
    assert value(samples, "backoffice_batches_waiting", account="122503", status="pending_approval") == 1
    minutes = value(
        samples, "backoffice_batches_waiting_cutoff_minutes", account="122503", status="pending_approval"
    )
    assert minutes is not None and 300 < minutes <= 420, minutes
    assert value(samples, "backoffice_batches_needing_attention", status="failed") == 1
    assert value(samples, "backoffice_batches_needing_attention", status="expired") == 0

    # Upstream calls, counted from the audit: the sync's page read.
    page = {
        "endpoint": "/v1/accounts/{account_id}/positions",
        "method": "GET",
        "status": "200",
        "error": "",
    }
    calls = value(samples, "backoffice_upstream_calls_total", **page)
    # One page read by the sync after the first scrape (the desk fixture's own sync came before it).
    assert calls is not None and calls - (value(before, "backoffice_upstream_calls_total", **page) or 0) == 1

    # Queue depth, read from the broker, for every queue the project sends to.
    maintenance = queues.queue_of(queue, queues.MAINTENANCE)
    assert {queue, maintenance} <= set(project_queues())
    assert value(samples, "backoffice_celery_queue_length", queue=maintenance) >= 3

    # The chain verification just run.
    assert value(samples, "backoffice_audit_chain_last_verification_ok") == 1
    when = value(samples, "backoffice_audit_chain_last_verification_timestamp_seconds")
    assert abs(when - timezone.now().timestamp()) < 60
    assert value(samples, "backoffice_jobs_waiting") is not None

    for source in ("audit_calls", "audit_chain", "broker", "instructions", "jobs", "positions"):
        assert value(samples, "backoffice_metrics_source_up", source=source) == 1, source


def test_a_source_that_cannot_be_read_is_reported_down_and_the_rest_still_answer(
    client, settings, monkeypatch
):
    from backoffice.telemetry import metrics

    settings.METRICS_TOKEN = TOKEN

    def broker_down():
        raise ConnectionError("broker unreachable")

    monkeypatch.setitem(metrics._sources, "broker", broker_down)
    samples = scrape(client)
    assert value(samples, "backoffice_metrics_source_up", source="broker") == 0
    assert value(samples, "backoffice_metrics_source_up", source="positions") == 1
    assert not any(name == "backoffice_celery_queue_length" for name, _ in samples)


def test_queue_depth_covers_every_queue_of_the_deployment_and_any_declared(client, settings):
    from kombu import Queue

    settings.METRICS_TOKEN = TOKEN
    declared, prefix = f"declared-{uuid.uuid4().hex[:6]}", f"depth-{uuid.uuid4().hex[:6]}"
    maintenance = queues.queue_of(prefix, queues.MAINTENANCE)
    declared_before = app.conf.task_queues
    app.conf.task_queues = [Queue(declared)]
    app.conf.task_default_queue = prefix  # restored after the test by the suite's autouse fixture
    try:
        health_check.delay("routed")  # routed by urgency to the maintenance queue
        health_check.delay("routed")
        samples = scrape(client)
        assert value(samples, "backoffice_celery_queue_length", queue=declared) == 0
        assert value(samples, "backoffice_celery_queue_length", queue=maintenance) == 2
        for kind in queues.KINDS:
            assert (
                value(
                    samples, "backoffice_celery_queue_length", queue=f"{app.conf.task_default_queue}.{kind}"
                )
                is not None
            )
    finally:
        app.conf.task_queues = declared_before
        with app.connection_for_write() as conn:
            conn.default_channel.client.delete(maintenance)
