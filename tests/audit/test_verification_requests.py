"""Chain verifications: one at a time, and one request waiting at a time, so a read-only role cannot
fill the maintenance queue (each walks the whole chain)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections
from django.urls import reverse

from backoffice.audit import services, tasks
from backoffice.audit.models import ChainVerification


@pytest.mark.django_db(databases=["default", "audit"])
def test_a_verification_requested_while_one_waits_is_refused_with_a_message(compliance_client, monkeypatch):
    queued = []
    monkeypatch.setattr(tasks.verify_chain, "delay", lambda **kwargs: queued.append(kwargs))
    first = compliance_client.post(reverse("audit:verify_now"), follow=True)
    assert "Verification queued" in first.content.decode()
    second = compliance_client.post(reverse("audit:verify_now"), follow=True)
    assert "already waiting or running" in second.content.decode()
    assert len(queued) == 1, "the second request queued nothing"
    waiting = ChainVerification.objects.get(ok__isnull=True)
    assert queued[0]["run_id"] == waiting.pk and queued[0]["trigger"] == "manual"

    services.run_verification(run_id=waiting.pk)  # the worker runs it: the same record is completed
    assert ChainVerification.objects.get(pk=waiting.pk).ok is True
    compliance_client.post(reverse("audit:verify_now"))
    assert len(queued) == 2, "once it has finished, a new one may be asked for"


@pytest.mark.django_db(databases=["default", "audit"])
def test_a_request_the_broker_could_not_take_leaves_nothing_waiting(compliance_client, monkeypatch):
    def broker_down(**kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.verify_chain, "delay", broker_down)
    page = compliance_client.post(reverse("audit:verify_now"), follow=True).content.decode()
    assert "task queue is unreachable" in page
    assert not ChainVerification.objects.filter(ok__isnull=True).exists()


@pytest.mark.django_db(transaction=True, databases=["default", "audit"])
def test_two_verifications_at_once_run_one_after_the_other(monkeypatch):
    walked = services.verify_chain
    spans: list[tuple[float, float]] = []

    def slow_walk(**kwargs):
        started = time.monotonic()
        time.sleep(0.6)
        result = walked(**kwargs)
        spans.append((started, time.monotonic()))
        return result

    monkeypatch.setattr(services, "verify_chain", slow_walk)

    def verify() -> None:
        try:
            services.run_verification(trigger="command")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=verify) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(spans) == 2
    (_, first_end), (second_start, _) = sorted(spans)
    assert second_start >= first_end, "the second walk began only after the first had finished"
    assert ChainVerification.objects.filter(ok=True).count() == 2
