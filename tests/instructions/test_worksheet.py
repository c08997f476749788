"""The expiration worksheet on a large day: grouped by account then underlying with totals that match
the rows, rows loaded a group at a time, filters, paging, desk scoping, and a number of queries that
does not grow with the rows."""

from __future__ import annotations

import importlib
import re
from collections import Counter
from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from instructions import exercise, services
from instructions.models import Batch
from positions.models import Account, Desk, Position
from tests.conftest import make_user
from tests.fixtures.desk import option
from tests.positions.factories import make_position, option_symbol

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "audit"])

DAY = date(2026, 4, 24)
URL = "/instructions/worksheet/"


def rows_of(client, account: int, underlying: str, **params) -> tuple[str, list]:
    """A group's rows as the page loads them when it is opened: the fragment's HTML and its rows."""
    response = client.get(URL, {"part": "rows", "underlying": underlying, "group_account": account, **params})
    assert response.status_code == 200
    return response.content.decode(), response.context["sheet"].rows


def second_account(number: int = 777001) -> Account:
    return Account.objects.create(number=number, name="Second client")


def failed_dne(users, desk, sandbox, settings) -> tuple[Position, Batch]:
    settings.INSTRUCTION_SUBMIT_RETRIES = 1
    itm = option(desk, "AAPL", put_call="C")
    batch = services.create_batch(
        users["operations"], desk, [services.RowSpec(itm.pk, "DO_NOT_EXERCISE", 1, "client keeps it")]
    )
    services.submit_for_approval(users["operations"], batch.pk)
    services.approve_batch(users["supervisors"], batch.pk)
    sandbox.set_faults({"submit_instructions": {"outage": True}})
    batch = services.submit_batch(batch.pk, final_attempt=True)
    sandbox.clear_faults()
    assert batch.status == Batch.Status.FAILED
    return itm, batch


def test_grouped_by_account_then_underlying_with_totals_that_match_the_rows(client, users, desk):
    other = second_account()
    for strike in (150, 400, 900):  # a call deep in the money, one near nothing, one far out
        make_position(other, option_symbol("AAPL", DAY, "C", strike), "3")
    make_position(other, option_symbol("AAPL", DAY, "P", 100), "-2")
    client.force_login(users["operations"])
    response = client.get(URL)
    sheet = response.context["sheet"]
    expiring = Position.objects.filter(instrument_type="OPTION", expiration_date=DAY)
    assert [section.account.number for section in sheet.accounts] == [desk.number, other.number]
    assert {(g.account.number, g.underlying) for g in sheet.groups} == set(
        expiring.values_list("account__number", "underlying_root")
    )
    assert sheet.positions == expiring.count() and not sheet.rows, "no row is built until one is opened"
    for section in sheet.accounts:
        assert section.positions == sum(g.positions for g in section.groups)
        outcomes: Counter[str] = Counter()
        for group in section.groups:
            outcomes.update(group.outcomes)
            _, rows = rows_of(client, section.account.number, group.underlying)
            assert {(r.position.account_id, r.position.underlying_root) for r in rows} == {
                (section.account.pk, group.underlying)
            }
            assert len(rows) == group.positions
            by_row: Counter[str] = Counter()
            for row in rows:
                for n, outcome, _ in row.outcomes:
                    by_row[outcome.label] += n
            assert dict(by_row) == group.outcomes, "the head's sums are the rows' outcomes"
            assert group.contracts_long == sum(int(r.position.quantity) for r in rows if r.is_long)
            assert group.contracts_short == sum(-int(r.position.quantity) for r in rows if not r.is_long)
            assert group.pin_risk == sum(r.assessment.pin_risk for r in rows)
            assert group.unpriced == sum(r.price is None for r in rows)
        assert dict(outcomes) == section.outcomes
    assert sum(sheet.counts.values()) == sum(abs(int(q)) for q in expiring.values_list("quantity", flat=True))
    second = next(g for g in sheet.groups if g.account.number == other.number)
    assert second.outcomes == {"Exercised": 3, "Lapses": 6, "No assignment expected": 2}
    html = response.content.decode()
    assert f'id="account-{other.number}"' in html and "Select all" in html


def test_against_the_money_and_failed_dnes_are_counted_per_group_and_open_it(
    client, users, desk, sandbox, settings
):
    failed_dne(users, desk, sandbox, settings)
    contrary = option(desk, "MSFT", put_call="P")
    live = services.create_batch(
        users["operations"], desk, [services.RowSpec(contrary.pk, "CONTRARY_EXERCISE", 1, "client view")]
    )
    services.submit_for_approval(users["operations"], live.pk)
    services.approve_batch(users["supervisors"], live.pk)
    services.submit_batch(live.pk)
    client.force_login(users["operations"])
    response = client.get(URL)
    sheet = response.context["sheet"]
    groups = {g.underlying: g for g in sheet.groups}
    assert groups["AAPL"].failed_dne == 1 and groups["AAPL"].attention >= 1
    assert groups["AAPL"].open and not groups["AAPL"].rows, "opened for the browser to load, not built"
    assert sheet.accounts[0].failed_dne == 1 and sheet.totals.failed_dne == 1
    for group in sheet.groups:  # each count is the rows with an instruction in flight against the money
        _, rows = rows_of(client, desk.number, group.underlying)
        expected = sum(
            any(
                exercise.is_contrary(
                    i.instruction_type,
                    r.position.put_call,
                    r.position.strike,
                    r.price.price if r.price else None,
                )
                for i in r.in_flight
            )
            for r in rows
            if r.is_long
        )
        assert group.against_the_money == expected, group.underlying
    assert groups["MSFT"].against_the_money >= 1
    assert not groups["MSFT"].open or groups["MSFT"].attention
    html = response.content.decode()
    assert "1 failed DNE" in html and "against the money" in html
    aapl = re.search(r'<details class="ws-group" id="group-122503-aapl"[^>]*>', html)
    assert aapl and " open" in aapl.group(0)


def test_opening_a_group_shows_its_rows_and_only_them(client, users, desk):
    client.force_login(users["operations"])
    html, rows = rows_of(client, desk.number, "AAPL")
    aapl = Position.objects.filter(account=desk, underlying_root="AAPL", expiration_date=DAY)
    assert {r.position.pk for r in rows} == set(aapl.values_list("pk", flat=True))
    for position in aapl:
        assert position.symbol in html
    assert "MSFT" not in html
    assert '<th scope="row"' in html and "data-select-group" in html
    boxes = re.findall(r'name="position" value="(\d+)"', html)
    assert {int(pk) for pk in boxes} == {r.position.pk for r in rows if r.selectable}
    # Without scripts, the group's link reloads the page with it opened; the others keep their link.
    page = client.get(URL, {"underlying": "AAPL", "group_account": desk.number}).content.decode()
    assert all(position.symbol in page for position in aapl)
    assert "Show the " in page and 'data-underlying="MSFT"' in page


def test_filters_narrow_groups_totals_and_rows(client, users, desk, sandbox, settings):
    itm, _ = failed_dne(users, desk, sandbox, settings)
    client.force_login(users["operations"])
    everything = client.get(URL).context["sheet"]

    def sheet(**params):
        response = client.get(URL, params)
        assert response.status_code == 200
        return response.context["sheet"]

    in_the_money = sheet(moneyness="itm")
    assert 0 < in_the_money.positions < everything.positions
    for group in in_the_money.groups:
        _, rows = rows_of(client, desk.number, group.underlying, moneyness="itm")
        assert rows and all(r.in_the_money is not None and r.in_the_money >= 0.01 for r in rows)
    lapsing = sheet(outcome="LAPSES")
    assert set(lapsing.counts) >= {"Lapses"} and lapsing.positions < everything.positions
    msft = sheet(q="ms")
    assert {g.underlying for g in msft.groups} == {"MSFT"}
    attention = sheet(attention="on")
    assert attention.positions == 1 and attention.groups[0].underlying == "AAPL"
    _, rows = rows_of(client, desk.number, "AAPL", attention="on")
    assert [r.position.pk for r in rows] == [itm.pk]
    assert attention.attention, "the list of what needs attention is never filtered away"
    assert "No expiring option position matches" in client.get(URL, {"q": "ZZZZ"}).content.decode()
    for bad in ({"outcome": "BOGUS"}, {"start": "-5"}, {"group_account": "x"}, {"moneyness": "\x00"}):
        assert client.get(URL, bad).status_code in (200, 400), bad


def test_a_large_group_is_shown_a_page_at_a_time(client, users, desk, monkeypatch):
    monkeypatch.setattr(importlib.import_module("instructions.queries.worksheet"), "ROWS_PER_PAGE", 2)
    other = second_account()
    for strike in range(100, 105):
        make_position(other, option_symbol("ZZZ", DAY, "C", strike), "1")
    client.force_login(users["operations"])
    html, rows = rows_of(client, other.number, "ZZZ")
    assert [r.position.strike for r in rows] == [100, 101]
    assert "Rows 1 to 2 of 5" in html and "start=2" in html
    html, rows = rows_of(client, other.number, "ZZZ", start=4)
    assert [r.position.strike for r in rows] == [104] and "start=2" in html, "a link back"


def test_a_desk_sees_its_own_accounts_only(client, users, desk):
    other = second_account()
    make_position(other, option_symbol("AAPL", DAY, "C", 150), "3")
    outsider = make_user("ops_zed", "operations")
    own = Desk.objects.create(name="Second desk")
    own.accounts.add(other)
    own.members.add(outsider)
    client.force_login(outsider)
    sheet = client.get(URL).context["sheet"]
    assert [s.account.number for s in sheet.accounts] == [other.number]
    html, rows = rows_of(client, desk.number, "AAPL")
    assert not rows and "No option position of this underlying" in html


def test_queries_do_not_grow_with_rows_accounts_or_groups(client, users, desk, sandbox, settings):
    failed_dne(users, desk, sandbox, settings)  # a group opened for attention
    other = second_account()
    make_position(other, option_symbol("ZZZ", DAY, "C", 99), "2")
    client.force_login(users["operations"])
    requests = {
        "page": {},
        "head": {"part": "head"},
        "group": {"part": "rows", "underlying": "ZZZ", "group_account": other.number},
        "page with a group": {"underlying": "ZZZ"},
        "filtered": {"moneyness": "otm", "q": "Z"},
    }

    def count() -> dict[str, tuple[int, int]]:
        counts = {}
        for name, params in requests.items():
            client.get(URL, {"day": DAY.isoformat(), **params})  # warm
            with CaptureQueriesContext(connection) as captured:
                response = client.get(URL, {"day": DAY.isoformat(), **params})
            assert response.status_code == 200
            counts[name] = (len(captured), response.context["sheet"].positions)
        return counts

    small = count()
    third = second_account(777002)
    for strike in range(100, 160):
        make_position(other, option_symbol("ZZZ", DAY, "C", strike), "2")
        make_position(third, option_symbol(f"Y{strike % 7}", DAY, "P", strike), "-1")
    large = count()
    for name in requests:
        assert large[name][0] == small[name][0], (name, small[name], large[name])
    assert large["page"][1] == small["page"][1] + 120
    assert large["group"][1] == 61
