"""Notifications in a browser, with a real Celery worker and a real SMTP server: a maker's submission
raises the desk's checker's bell and e-mails them, a rejection reaches the maker the same way, and
both link to the batch."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings

from backoffice.celery import app
from instructions import services
from instructions.services import RowSpec
from tests.conftest import start_worker, stop_worker, wait_for
from tests.e2e.conftest import login, logout
from tests.fixtures.desk import option
from tests.fixtures.smtp import Inbox, body_of, smtp_server

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases=["default", "audit"]),
]


@pytest.fixture
def mailroom(sandbox_process, live_server) -> Iterator[Inbox]:
    """A real SMTP server, and a real worker of a queue of this test's own that e-mails through it
    with links to the live server."""
    queue = f"{settings.CELERY_TASK_DEFAULT_QUEUE}-notify"
    with smtp_server() as inbox:
        worker = start_worker(
            queue,
            "notify-worker",
            sandbox_process.base_url,
            env={
                "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "EMAIL_HOST": inbox.host,
                "EMAIL_PORT": str(inbox.port),
                "EMAIL_USE_TLS": "0",
                "SITE_URL": live_server.url,
            },
        )
        sending_to = app.conf.task_default_queue
        app.conf.task_default_queue = queue
        try:
            yield inbox
        finally:
            app.conf.task_default_queue = sending_to
            stop_worker(worker)


def mail_to(inbox: Inbox, address: str, count: int = 1) -> str:
    wait_for(lambda: len(inbox.to(address)) >= count, timeout=30)
    return body_of(inbox.to(address)[count - 1])


def test_a_submission_rings_the_checkers_bell_and_a_rejection_the_makers(
    page, live_server, users, desk, mailroom
):
    for role, address in (("operations", "alice@example.com"), ("supervisors", "carol@example.com")):
        users[role].email = address
        users[role].save()
    batch = services.create_batch(
        users["operations"], desk, [RowSpec(option(desk, "AAPL", put_call="C").pk, "EXERCISE", 1)]
    )
    batch_url = f"/instructions/batches/{batch.pk}/"

    login(page, live_server, "ops_alice")
    assert page.locator("#notification-count").count() == 0
    page.goto(f"{live_server.url}{batch_url}")
    page.click("#batch-actions button:has-text('Submit for approval')")
    page.wait_for_selector(".messages")
    assert page.locator("#notification-count").count() == 0, "the maker is not asked to approve"
    logout(page)

    login(page, live_server, "sup_carol")
    assert page.locator("#notification-count").inner_text() == "1"
    assert page.locator("#nav-bell").get_attribute("aria-label") == "Notifications, 1 unread"
    body = mail_to(mailroom, "carol@example.com")
    assert f"Batch #{batch.pk} awaits your approval" in body
    assert f"{live_server.url}{batch_url}" in body, "the e-mail links to the batch"
    page.click("#nav-bell")
    page.click(f"#notification-list a[href='{batch_url}']")
    page.wait_for_url(f"{live_server.url}{batch_url}")
    page.fill("#batch-actions textarea[name=reason], #batch-actions input[name=reason]", "wrong account")
    page.click("#batch-actions button:has-text('Reject')")
    page.wait_for_selector(".messages")
    assert page.locator("#notification-count").count() == 0, "decided: it no longer awaits the checker"
    logout(page)

    login(page, live_server, "ops_alice")
    assert page.locator("#notification-count").inner_text() == "1"
    body = mail_to(mailroom, "alice@example.com")
    assert f"Batch #{batch.pk} was rejected by sup_carol" in body and "wrong account" in body
    assert f"{live_server.url}{batch_url}" in body
    page.click("#nav-bell")
    row = page.locator("#notification-list tbody tr").first
    assert "wrong account" in row.inner_text()
    row.locator("a").click()
    page.wait_for_url(f"{live_server.url}{batch_url}")
    page.click("#nav-bell")
    page.click("#mark-all-read")
    assert page.locator("#notification-count").count() == 0
    assert len(mailroom.messages) == 2, "one e-mail each, to those who have an address"
    assert not page.console_errors
