"""The worksheet's pictures: contracts by outcome per underlying (as the sheet reckons them, with the
instructions in force) and the moneyness around the strike, in a constant number of queries."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from instructions.queries.charts import PIN_PERCENT, worksheet_figures
from tests.fixtures.desk import option
from tests.positions.factories import make_position, option_symbol

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "audit"])


def sheet_outcomes(client) -> dict[str, dict[str, int]]:
    sheet = client.get(reverse("instructions:worksheet")).context["sheet"]
    return {group.underlying: group.outcomes for group in sheet.groups}


def chart_outcomes(user, day) -> dict[str, dict[str, int]]:
    figures = worksheet_figures(user, day)
    return {
        underlying: {outcome.label: n for outcome, n in outcomes.items()}
        for underlying, outcomes in figures.outcomes_by_underlying.items()
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
    figures = worksheet_figures(users["operations"], sheet.day)
    assert figures.near_strike == near
    assert sum(line.long + line.short for line in figures.lines) == sum(
        abs(int(r.position.quantity)) for r in rows
    )
    response = client.get(reverse("instructions:worksheet"))
    moneyness = next(c for c in response.context["worksheet_chart_list"] if c.key == "ws-moneyness")
    assert sum(c.total for c in moneyness.categories) == sum(abs(int(r.position.quantity)) for r in rows)
    assert f"{near} contract" in moneyness.title
    html = response.content.decode()
    assert 'id="chart-ws-outcomes"' in html and 'id="chart-ws-moneyness"' in html
    assert html.count('role="img"') >= 2 and '<desc id="ws-outcomes-desc">' in html


def test_the_figures_cost_the_same_queries_however_many_strikes(users, desk):
    day = date(2026, 4, 24)

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            worksheet_figures(users["operations"], day)
        return len(captured)

    count()  # the user's permissions are read once, then cached on the user
    before = count()
    for strike in range(200, 240):
        make_position(desk, option_symbol("ZZZ", day, "C", strike), "2", "10.00")
    assert count() == before
    assert worksheet_figures(users["operations"], day, (desk.number,)).lines
    assert not worksheet_figures(users["operations"], day, (999,)).lines
    zzz = [line for line in worksheet_figures(users["operations"], day).lines if line.underlying == "ZZZ"]
    assert len(zzz) == 40 and all(line.moneyness is None for line in zzz)  # ZZZ has no price
    assert sum(line.outcomes[next(iter(line.outcomes))] for line in zzz) == 80
    assert Decimal(0) not in {line.long for line in zzz}
