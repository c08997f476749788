"""Expiration day in a browser at 1440x900: failures stay loud, deadlines govern and tick, the
checker sees the economics, nothing pushes the page sideways. The sandbox's clock moves the day."""

from __future__ import annotations

import re

import pytest

from backoffice import clock
from instructions import services
from instructions.models import Batch
from instructions.services import RowSpec
from tests.e2e.conftest import login, logout
from tests.fixtures.desk import option

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases=["default", "audit"])]


def at(sandbox, market_time: str) -> None:
    sandbox.set_clock(market_time=market_time)
    clock.clear_cache()


def no_horizontal_overflow(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], (
        f"the page is {width}px wide at {page.viewport_size['width']}px"
    )


def open_group(page, underlying: str) -> None:
    group = page.locator(f"details[data-underlying='{underlying}']")
    if group.get_attribute("open") is None:  # a group that needs attention opens with the page
        group.locator("summary").click()
    page.wait_for_selector(f"details[data-underlying='{underlying}'] [data-worksheet-rows]")


def test_a_failed_dne_stays_loud_on_every_screen_until_acknowledged(
    page, live_server, users, desk, sandbox, settings
):
    settings.INSTRUCTION_SUBMIT_RETRIES = 1
    itm = option(desk, "AAPL", put_call="C")
    batch = services.create_batch(
        users["operations"], desk, [RowSpec(itm.pk, "DO_NOT_EXERCISE", 2, "client keeps the calls")]
    )
    services.submit_for_approval(users["operations"], batch.pk)
    services.approve_batch(users["supervisors"], batch.pk)
    sandbox.set_faults({"submit_instructions": {"outage": True}})
    assert services.submit_batch(batch.pk, final_attempt=True).status == Batch.Status.FAILED

    for person in ("sup_carol", "ops_bob"):  # the checkers and the makers of the account
        login(page, live_server, person)
        assert page.locator("#attention-count").inner_text() == "1", "the badge counts it"
        card = page.locator("#card-attention")
        assert f"Batch #{batch.pk} did not reach Clear Street" in card.inner_text()
        logout(page)

    login(page, live_server, "ops_alice")
    page.click("nav >> text=Worksheet")
    open_group(page, "AAPL")
    row = page.locator("[data-worksheet-rows] tbody tr", has_text=itm.symbol)
    assert "needs-attention" in row.get_attribute("class")
    assert "did not reach Clear Street" in row.inner_text()
    assert "Needs attention" in page.locator("#worksheet-attention").inner_text()
    no_horizontal_overflow(page)
    page.click(f"#worksheet-attention a[href='/instructions/batches/{batch.pk}/']")
    page.fill(f"#ack-batch-{batch.pk}", "phoned the desk; the client agrees the calls are exercised")
    page.click("#batch-attention button[type=submit]")
    assert "Acknowledged" in page.locator(".messages").inner_text()
    assert page.locator("#attention-count").count() == 0, "acknowledged: the badge is gone"
    page.goto(f"{live_server.url}/")
    assert page.locator("#card-attention").count() == 0
    assert not page.console_errors


def test_after_the_firms_cutoff_a_cea_goes_and_an_exercise_says_why_not(
    page, live_server, users, desk, sandbox
):
    itm = option(desk, "AAPL", put_call="C")
    at(sandbox, "16:32")
    login(page, live_server, "ops_alice")
    page.click("nav >> text=Worksheet")
    assert "passed" in page.locator("#firm-countdown").inner_text()
    open_group(page, "AAPL")
    row = page.locator("[data-worksheet-rows] tbody tr", has_text=itm.symbol)
    why = row.locator("td.why-not").inner_text()
    assert "firm's cutoff for that (16:30 ET) has passed" in why and "until 17:30 ET" in why
    row.locator("input[type=checkbox]").check()
    page.select_option("#ws-type", "CONTRARY_EXERCISE")
    page.click("#worksheet-form button[type=submit]")
    page.wait_for_url(re.compile(r"/instructions/batches/new/"))
    offered = page.locator("#batch-form select[name$=instruction_type] option").all_inner_texts()
    assert "Exercise" not in offered and "Contrary exercise (CEA)" in offered, "only what can still be done"
    assert "16:30 ET" in page.locator("#batch-form tr.why-not-row").inner_text()
    page.fill("#batch-form input[name$=override_reason]", "client asks for the reverse of the default")
    page.click("#batch-form button[type=submit]")
    page.wait_for_url(re.compile(r"/instructions/batches/\d+/$"))
    batch_url = page.url
    page.click("#batch-actions button.primary")  # submit for approval
    logout(page)

    login(page, live_server, "sup_carol")
    page.goto(batch_url)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#batch-actions button.primary")
    assert "Approved" in page.locator(".messages").inner_text()
    batch = Batch.objects.get(pk=int(batch_url.rstrip("/").rsplit("/", 1)[1]))
    assert services.submit_batch(batch.pk).status == Batch.Status.SUBMITTED  # the worker's part
    assert not page.console_errors


def test_a_countdown_turns_amber_then_red_as_the_clock_moves(page, live_server, users, desk, sandbox):
    at(sandbox, "15:50")
    login(page, live_server, "ops_alice")
    page.click("nav >> text=Worksheet")
    countdown = page.locator("#firm-countdown")
    page.wait_for_selector("#firm-countdown[data-state=ok]")
    at(sandbox, "16:05")  # 25 minutes to the firm's cutoff
    page.wait_for_selector("#firm-countdown[data-state=warn]", timeout=15_000)
    assert "in 2" in countdown.inner_text()
    at(sandbox, "16:25")  # 5 minutes
    page.wait_for_selector("#firm-countdown[data-state=bad]", timeout=15_000)
    assert re.match(r"in 4 min|in 5 min", countdown.inner_text())
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1, "no reload"
    assert not page.console_errors


def test_the_checker_reviews_the_economics(page, live_server, users, desk, sandbox):
    itm = option(desk, "AAPL", put_call="C")
    batch = services.create_batch(
        users["operations"], desk, [RowSpec(itm.pk, "DO_NOT_EXERCISE", 2, "hedge rolled: keep the calls")]
    )
    services.submit_for_approval(users["operations"], batch.pk)
    login(page, live_server, "sup_carol")
    page.click("nav >> text=Approvals")
    queue = page.locator("#pending-batches tbody tr", has_text=f"#{batch.pk}")
    assert "16:30" not in queue.inner_text() and "17:30" in queue.inner_text(), (
        "a contrary DNE: the CEA deadline"
    )
    queue.locator("a").first.click()
    row = page.locator("#batch-rows tbody tr", has_text=itm.symbol)
    text = row.inner_text()
    underlying = itm.underlying_instrument_id
    assert "position in account 122503" in text  # the price's source
    assert "Exercised" in text and "Lapses" in text  # the outcome without and with the instruction
    assert "against the money" in text and "abandons $" in text and "hedge rolled: keep the calls" in text
    assert "against" in row.get_attribute("class"), "highlighted to the checker"
    assert page.locator("#total-at-stake").inner_text().replace(",", "") != "0.00"
    assert page.locator("#against-warning").is_visible()
    assert not page.locator("details:has-text('Idempotency keys') li").first.is_visible(), (
        "keys behind a disclosure"
    )
    assert underlying
    no_horizontal_overflow(page)
    assert not page.console_errors


def test_nothing_overflows_at_1440(page, live_server, users, desk, sandbox):
    itm = option(desk, "AAPL", put_call="C")
    login(page, live_server, "ops_alice")
    page.goto(f"{live_server.url}/positions/{itm.pk}/")
    no_horizontal_overflow(page)
    page.screenshot(path="var/screenshots/position_detail_1440.png", full_page=True)
    for field in ("quantity", "available_quantity", "market_value"):
        cell = page.locator("#position-fields tr", has=page.locator(f"th:text-is('{field}')")).locator("td")
        box, card = cell.bounding_box(), page.locator("#position-fields").bounding_box()
        assert cell.is_visible() and box["x"] + box["width"] <= card["x"] + card["width"] + 1, field
        assert cell.evaluate("el => el.scrollWidth <= el.clientWidth"), f"{field} is cut off"
    page.goto(f"{live_server.url}/instructions/worksheet/")
    for underlying in ("AAPL", "MSFT", "NVDA"):
        open_group(page, underlying)
    no_horizontal_overflow(page)
    assert not page.console_errors
