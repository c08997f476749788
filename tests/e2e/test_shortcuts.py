"""A checker works the approval queue from the keyboard: j/k move between batches, `?` lists the
keys, `a` approves through the batch's own approve form and its confirmation, `n` goes on to the next
batch, and nothing fires while the checker types."""

from __future__ import annotations

import pytest

from instructions import services
from instructions.models import Batch
from instructions.services import RowSpec
from tests.e2e.conftest import SCREENSHOTS, login
from tests.fixtures.desk import option

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases=["default", "audit"])]


def focused_batch(page) -> str | None:
    return page.evaluate("document.activeElement.closest('tr[data-batch]')?.dataset.batch ?? null")


def test_a_checker_approves_from_the_keyboard(page, live_server, users, desk):
    itm = option(desk, "AAPL", put_call="C")
    for _ in range(2):  # two batches from the maker, one contract each
        batch = services.create_batch(users["operations"], desk, [RowSpec(itm.pk, "EXERCISE", 1)])
        services.submit_for_approval(users["operations"], batch.pk)
    login(page, live_server, "sup_carol")  # a checker who drafted neither
    page.goto(f"{live_server.url}/instructions/approvals/")
    queue = page.locator("#pending-batches tbody tr").evaluate_all("rows => rows.map(r => r.dataset.batch)")
    assert len(queue) == 2

    # j and k move the focus down and up the queue, and the row shows where it is.
    page.keyboard.press("j")
    assert focused_batch(page) == queue[0]
    page.keyboard.press("j")
    assert focused_batch(page) == queue[1]
    assert page.locator(f"tr[data-batch='{queue[1]}']").get_attribute("class") == "kb-current"
    page.keyboard.press("j")  # the last stays the last
    assert focused_batch(page) == queue[1]
    page.keyboard.press("k")
    assert focused_batch(page) == queue[0]

    # The queue refreshes itself; the focus stays on the batch it was on.
    page.locator("#approval-queue[data-refreshed-at]").wait_for(state="attached", timeout=15_000)
    assert focused_batch(page) == queue[0]

    # ? lists the keys; Esc closes the list and the focus stays where it was.
    page.keyboard.press("?")
    help_ = page.locator("#shortcut-help")
    assert help_.is_visible()
    assert "Next item" in help_.inner_text()
    page.screenshot(path=str(SCREENSHOTS / "shortcut-help.png"))
    page.keyboard.press("Escape")
    assert not help_.is_visible()
    assert focused_batch(page) == queue[0]

    # o opens the batch; on it, keys typed into the reason field stay in the field.
    page.keyboard.press("o")
    page.wait_for_url(f"{live_server.url}/instructions/batches/{queue[0]}/")
    questions: list[str] = []
    answer = {"yes": False}

    def reply(dialog) -> None:
        questions.append(dialog.message)
        if answer["yes"]:
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", reply)
    page.focus("#batch-actions textarea[name=reason]")
    page.keyboard.type("ja? r")
    assert page.input_value("#batch-actions textarea[name=reason]") == "ja? r"
    assert not questions and not help_.is_visible()
    page.fill("#batch-actions textarea[name=reason]", "")

    # r puts the focus in the reason to reject; a asks before approving, and No leaves it pending.
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("r")
    assert page.evaluate("document.activeElement.name") == "reason"
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("a")
    assert questions == [f"Approve and send batch #{queue[0]} to Clear Street?"]
    assert Batch.objects.get(pk=queue[0]).status == Batch.Status.PENDING_APPROVAL

    # Yes goes through the approve form: the checker's decision, recorded as a click's would be.
    answer["yes"] = True
    page.keyboard.press("a")
    page.wait_for_selector(".message.success")
    assert "Approved" in page.locator(".messages").inner_text()
    assert len(questions) == 2
    approved = Batch.objects.get(pk=queue[0])
    assert approved.status != Batch.Status.PENDING_APPROVAL
    assert approved.decided_by == users["supervisors"]
    assert Batch.objects.get(pk=queue[1]).status == Batch.Status.PENDING_APPROVAL

    # n goes on to the next batch awaiting approval, in the queue's order.
    page.keyboard.press("n")
    page.wait_for_url(f"{live_server.url}/instructions/batches/{queue[1]}/")
    assert not [e for e in page.console_errors if "Content Security Policy" in e]
