"""The worksheet's pictures: contracts by outcome per underlying (as the sheet reckons them, with the
instructions in force) and the moneyness around the strike, drawn from the sheet's own sums: no
query of their own."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from instructions.queries import worksheet
from instructions.templatetags.worksheet_charts import PIN_PERCENT, near_strike, outcomes_by_underlying
from tests.fixtures.desk import option
from tests.positions.factories import make_position, option_symbol

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "audit"])


def sheet_outcomes(client) -> dict[str, dict[str, int]]:
    sheet = client.get(reverse("instructions:worksheet")).context["sheet"]
    return {group.underlying: group.outcomes for group in sheet.groups}


def chart_outcomes(user, day) -> dict[str, dict[str, int]]:
    return {
        underlying: {outcome.label: n for outcome, n in outcomes.items()}
        for underlying, outcomes in outcomes_by_underlying(worksheet(user, day)).items()
    }


def test_outcomes_per_underlying_are_the_sheets_with_and_without_instructions(client, users, desk):
    from instructions import services

    client.force_login(users["operations"])
    day = client.get(reverse("instructions:worksheet")).context["sheet"].day
    assert chart_outcomes(users["operations"], day) == sheet_outcomes(client)
    itm = option(desk, "AAPL", put_call="C")
    batch = services.create_batch(
        users["operations"], desk, [services.RowSpec(itm.pk, "DO_NOT_EXERCISE", 1, "client keeps the option")]
    )
    services.submit_for_approval(users["operations"], batch.pk)
    services.approve_batch(users["supervisors"], batch.pk)
    services.submit_batch(batch.pk)
    outcomes = chart_outcomes(users["operations"], day)
    assert outcomes == sheet_outcomes(client) and outcomes["AAPL"]["Lapses"] >= 1


def test_moneyness_counts_every_contract_and_the_pin_risk_near_the_strike(client, users, desk):
    client.force_login(users["operations"])
    sheet = client.get(reverse("instructions:worksheet")).context["sheet"]
    rows = []
    for group in sheet.groups:
        rows += (
            client.get(reverse("instructions:worksheet"), {"underlying": group.underlying})
            .context["sheet"]
            .rows
        )
    near = sum(
        abs(int(row.position.quantity))
        for row in rows
        if row.in_the_money is not None and abs(row.in_the_money / row.position.strike * 100) <= PIN_PERCENT
    )
    assert near_strike(sheet) == near
    assert sum(sheet.totals.by_moneyness.values()) == sum(abs(int(r.position.quantity)) for r in rows)
    response = client.get(reverse("instructions:worksheet"))
    moneyness = next(c for c in response.context["worksheet_chart_list"] if c.key == "ws-moneyness")
    assert sum(c.total for c in moneyness.categories) == sum(abs(int(r.position.quantity)) for r in rows)
    assert f"{near} contract" in moneyness.title
    html = response.content.decode()
    assert 'id="chart-ws-outcomes"' in html and 'id="chart-ws-moneyness"' in html
    assert html.count('role="img"') >= 2 and '<desc id="ws-outcomes-desc">' in html


def test_the_charts_cost_no_query_and_follow_the_sheets_account_and_filters(client, users, desk):
    day = date(2026, 4, 24)
    for strike in range(200, 240):
        make_position(desk, option_symbol("ZZZ", day, "C", strike), "2", "10.00")
    sheet = worksheet(users["operations"], day, build_rows=False)
    with CaptureQueriesContext(connection) as captured:
        outcomes = outcomes_by_underlying(sheet)
        near_strike(sheet)
    assert not captured.captured_queries
    assert sum(outcomes["ZZZ"].values()) == 80  # 40 strikes of 2 contracts, all unpriced
    assert sheet.totals.by_moneyness[(None, True)] >= 80  # ZZZ has no price: "No price"
    assert outcomes_by_underlying(worksheet(users["operations"], day, (desk.number,), build_rows=False))
    assert not outcomes_by_underlying(worksheet(users["operations"], day, (999,), build_rows=False))
    client.force_login(users["operations"])
    response = client.get(reverse("instructions:worksheet"), {"day": day.isoformat(), "q": "ZZZ"})
    chart = next(c for c in response.context["worksheet_chart_list"] if c.key == "ws-outcomes")
    assert [category.label for category in chart.categories] == ["ZZZ"]
