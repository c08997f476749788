"""The desk's expiration day in a real browser, against the sandbox and a real Celery worker.

Operations opens the worksheet, selects contracts, drafts a batch and submits it for approval; a
supervisor approves; the rows show SENT, then ACCEPTED from the sandbox; compliance finds the
submit call by its request_id.
"""

from __future__ import annotations

import re

import pytest

from backoffice.audit.models import AuditEntry
from instructions.models import Batch
from instructions.tasks import sync_instructions
from tests.conftest import wait_for
from tests.e2e.conftest import login, logout

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases=["default", "audit"])]


def test_the_desks_expiration_day(page, live_server, users, desk, sandbox, celery_worker_process):
    login(page, live_server, "ops_alice")
    page.click("nav >> text=Worksheet")
    assert "Fri 24 Apr 2026" in page.locator(".page-head").inner_text()
    assert "17:30 ET" in page.locator("#deadlines").inner_text()
    # One line per underlying; every 122503 option expiring today, long and short, is counted there.
    positions = [
        int(n) for n in page.locator("details.ws-group summary span.num:nth-of-type(2)").all_inner_texts()
    ]
    assert sum(positions) == 5, positions
    for underlying in ("AAPL", "MSFT"):  # opening a group loads its rows
        page.click(f"details[data-underlying='{underlying}'] summary")
        page.wait_for_selector(f"details[data-underlying='{underlying}'] [data-worksheet-rows]")
    rows = page.locator("[data-worksheet-rows] tbody tr")
    short = rows.filter(has_text="MSFT  260424C00435000")
    assert short.locator("input[type=checkbox]").count() == 0, "short contracts cannot be instructed"
    aapl_itm = rows.filter(has_text="AAPL  260424C00140000")
    assert "Exercised" in aapl_itm.inner_text()
    aapl_itm.locator("input[type=checkbox]").check()
    rows.filter(has_text="MSFT  260424P").locator("input[type=checkbox]").check()
    page.select_option("#ws-type", "EXERCISE")
    page.click("#worksheet-form button[type=submit]")

    page.wait_for_url(re.compile(r"/instructions/batches/new/"))
    assert page.locator("#batch-form tbody tr").count() == 2
    page.fill("#batch-form textarea[name=note]", "Expiry exercise, desk A")
    page.click("#batch-form button[type=submit]")
    page.wait_for_url(re.compile(r"/instructions/batches/\d+/$"))
    batch_url = page.url
    page.click("#batch-actions button.primary")  # submit for approval
    assert "Pending approval" in page.locator(".page-head").inner_text()
    logout(page)

    login(page, live_server, "sup_carol")
    page.click("nav >> text=Approvals")
    page.click(f"a[href='{batch_url.replace(live_server.url, '')}']")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#batch-actions button.primary")
    assert "Approved" in page.locator(".messages").inner_text()

    batch = Batch.objects.get(pk=int(batch_url.rstrip("/").rsplit("/", 1)[1]))
    wait_for(lambda: Batch.objects.get(pk=batch.pk).status == Batch.Status.SUBMITTED)
    page.reload()
    statuses = page.locator("#batch-rows tbody tr td:last-child .pill").all_inner_texts()
    assert statuses == ["SENT", "SENT"]

    sandbox.advance(60)  # the clearing venue accepts them; the poll brings the news
    sync_instructions.delay(desk.pk).get(timeout=60)
    page.reload()
    assert page.locator("#batch-rows tbody tr td:last-child .pill").all_inner_texts() == [
        "ACCEPTED",
        "ACCEPTED",
    ]
    logout(page)

    batch.refresh_from_db()
    login(page, live_server, "comp_erin")
    page.goto(f"{live_server.url}/audit/?request_id={batch.request_id}")
    hits = page.locator("table tbody tr")
    assert hits.count() == 1
    assert "POST" in hits.inner_text()
    hits.locator("a").first.click()
    detail = page.content()
    assert batch.request_id in detail and "instruction_id" in detail
    submit = AuditEntry.objects.get(request_id=batch.request_id)
    assert (submit.actor_username, submit.approver_username) == ("ops_alice", "sup_carol")
    assert not page.console_errors
