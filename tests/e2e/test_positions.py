"""The desk's positions flow in a real browser: operations filters the book, opens a position and
requests a close; a supervisor approves it; the orders from the sandbox appear."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from positions import services
from positions.models import CloseRequest
from tests.conftest import wait_for
from tests.e2e.conftest import login, logout

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases=["default", "audit"])]


@pytest.fixture
def synced_book(sandbox, settings):
    settings.CLEAR_STREET_BASE_URL = sandbox.base_url
    settings.CLEAR_STREET_API_KEY = sandbox.api_key
    settings.MARKET_CLOCK = "system"
    for account_id in (19816, 122503):
        account, _ = services.register_account(account_id)
        run, _ = services.request_sync(account, enqueue=False)
        services.run_sync(run.pk)


def test_operations_requests_a_close_and_a_supervisor_approves_it(
    page, live_server, users, synced_book, celery_worker_process
):
    login(page, live_server, "ops_alice")
    page.click("nav >> text=Positions")
    page.select_option("#id_account", "122503")
    page.select_option("#id_instrument_type", "OPTION")
    page.fill("#id_q", "NVDA")
    page.click("form.filters button[type=submit]")
    rows = page.locator("table.book tbody tr")
    assert rows.count() >= 2
    for text in rows.all_inner_texts():
        assert "NVDA" in text and "122503" in text
    assert page.locator("#freshness").inner_text().startswith("Book as of")

    page.click("table.book tbody tr:first-child td.symbol a")
    page.wait_for_url(re.compile(r"/positions/\d+/$"))
    symbol = page.locator("h1").inner_text()
    assert page.locator("#option-contract").is_visible()
    page.check("#close-position input[name=cancel_orders]")
    page.fill("#close-position textarea[name=note]", "Reduce NVDA risk before expiry")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#close-position button[type=submit]")
    page.wait_for_url(re.compile(r"/positions/closes/\d+/$"))
    assert "Pending approval" in page.locator(".page-head").inner_text()
    assert "another person must approve" in page.content()
    close_url = page.url
    logout(page)

    login(page, live_server, "sup_carol")
    assert page.locator(f"nav a[href='{reverse('positions:closes')}'] .count").inner_text() == "1"
    page.click("nav >> text=Closes")
    page.click(f"text=#{close_url.rstrip('/').rsplit('/', 1)[1]}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#close-actions button.primary")
    page.wait_for_url(close_url)
    assert "Approved" in page.locator(".messages").inner_text()

    # The Celery worker sends the close to the sandbox; the page shows it once it is in.
    close = CloseRequest.objects.get(pk=int(close_url.rstrip("/").rsplit("/", 1)[1]))
    wait_for(lambda: CloseRequest.objects.get(pk=close.pk).status not in CloseRequest.OPEN)
    close.refresh_from_db()
    page.reload()
    assert "Submitted" in page.locator(".page-head").inner_text(), close.error
    orders = page.locator("#orders tbody tr")
    assert orders.count() == 1
    assert "SELL" in orders.inner_text() and "PENDING_NEW" in orders.inner_text()
    assert symbol.split()[0] in orders.inner_text()
    assert not page.console_errors


def test_sync_now_refreshes_the_book_in_place(page, live_server, users, synced_book, celery_worker_process):
    login(page, live_server, "ops_alice")
    page.goto(f"{live_server.url}/positions/?account=19816")
    page.evaluate("document.querySelector('#book').dataset.marker = 'old'")
    page.click("#sync-now")
    # (wait_for_function would evaluate a string in the page, which the page's CSP rightly refuses.)
    page.locator(".sync-progress", has_text="Book refreshed.").wait_for(timeout=60_000)
    assert page.evaluate("document.querySelector('#book').dataset.marker") is None, (
        "the book section was swapped"
    )
    assert page.evaluate("window.performance.getEntriesByType('navigation').length") == 1, "no full reload"
    assert not page.console_errors
