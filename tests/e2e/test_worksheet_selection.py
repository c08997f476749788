"""The worksheet's selection in a real browser: select all or none per account (by mouse and by
keyboard, with a focus you can see), a group's own select-all, and shift-click ranges; each then
drafts a batch of exactly the rows selected."""

from __future__ import annotations

import re
from datetime import date

import pytest

from instructions.models import Batch
from positions.models import Account
from tests.conftest import wait_for
from tests.e2e.conftest import SCREENSHOTS, login
from tests.positions.factories import make_position, option_symbol

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases=["default", "audit"])]

DAY = date(2026, 4, 24)  # the sandbox's expiration day


def second_account(strikes: range) -> tuple[Account, list[int]]:
    """An account of the desk holding AAPL calls expiring today, all in the money (AAPL is at 151)."""
    account = Account.objects.create(number=777001, name="Second client")
    pks = [make_position(account, option_symbol("AAPL", DAY, "C", k), "2").pk for k in strikes]
    return account, pks


def checked(page, scope: str) -> list[int]:
    return [
        int(v)
        for v in page.eval_on_selector_all(
            f"{scope} input[name=position]:checked", "boxes => boxes.map(b => b.value)"
        )
    ]


def draft(page, note: str) -> Batch:
    """Draft an exercise of the selection, as the maker would, and return the batch drafted."""
    page.select_option("#ws-type", "EXERCISE")
    page.click("#worksheet-form button[type=submit]")
    page.wait_for_url(re.compile(r"/instructions/batches/new/"))
    page.fill("#batch-form textarea[name=note]", note)
    page.click("#batch-form button[type=submit]")
    page.wait_for_url(re.compile(r"/instructions/batches/\d+/$"))
    return Batch.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))


def test_select_all_per_account_by_keyboard_then_none_then_all_drafts_exactly_that_account(
    page, live_server, users, desk, sandbox
):
    account, pks = second_account(range(100, 104))
    login(page, live_server, "ops_alice")
    page.click("nav >> text=Worksheet")
    section = f"section[data-account='{account.number}']"
    select_all = page.locator(f"{section} [data-select-account=all]")
    select_all.focus()
    page.keyboard.press("Enter")  # the account's groups open, load, and every box that can be is ticked
    wait_for(lambda: sorted(checked(page, section)) == sorted(pks), timeout=20)
    assert checked(page, f"section[data-account='{desk.number}']") == [], "the other account is untouched"
    assert page.locator("#selection-count").inner_text() == "4 positions selected"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.selectAccount") == "none"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none"), "the focus is visible"
    page.keyboard.press("Enter")
    assert checked(page, section) == []
    select_all.click()
    wait_for(lambda: len(checked(page, section)) == 4, timeout=20)
    page.screenshot(path=str(SCREENSHOTS / "worksheet_account_selected.png"), full_page=True)
    batch = draft(page, "Every AAPL call of the second client")
    assert batch.account_id == account.pk
    assert sorted(batch.rows.values_list("position_id", flat=True)) == sorted(pks)
    assert not page.console_errors


def test_a_shift_click_selects_the_range_and_a_group_selects_all_of_its_own(
    page, live_server, users, desk, sandbox
):
    account, pks = second_account(range(100, 106))
    login(page, live_server, "ops_alice")
    page.click("nav >> text=Worksheet")
    group = f"details[data-account='{account.number}'][data-underlying='AAPL']"
    page.click(f"{group} summary")
    page.wait_for_selector(f"{group} [data-worksheet-rows]")
    boxes = page.locator(f"{group} input[name=position]")
    assert boxes.count() == 6
    page.locator(f"{group} [data-select-group]").check()  # the group's own select-all
    assert sorted(checked(page, group)) == sorted(pks)
    page.locator(f"{group} [data-select-group]").uncheck()
    assert checked(page, group) == []
    boxes.nth(1).click()
    boxes.nth(4).click(modifiers=["Shift"])  # the range between, both ends included
    ranged = [int(boxes.nth(i).get_attribute("value")) for i in range(1, 5)]
    assert checked(page, group) == ranged
    boxes.nth(3).click(modifiers=["Shift"])  # clearing a box clears the range from the last one clicked
    assert checked(page, group) == ranged[:2]
    boxes.nth(3).click()
    boxes.nth(4).click()
    assert checked(page, group) == ranged
    batch = draft(page, "A range of AAPL calls")
    assert sorted(batch.rows.values_list("position_id", flat=True)) == sorted(ranged)
    assert not page.console_errors
