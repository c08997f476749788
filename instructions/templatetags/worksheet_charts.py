"""The worksheet's pictures (``templates/instructions/_worksheet_charts.html``): contracts by outcome
per underlying, and how far the strikes are from the price (pin risk). Both are drawn from the sums
the sheet itself made of the rows on screen, so they cost no query and always agree with it."""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.template.defaultfilters import pluralize

from backoffice.charts import BarChart, Category, Series, histogram
from instructions import exercise
from instructions.queries.worksheet import Worksheet

register = template.Library()

UNDERLYINGS_SHOWN = 12  # the underlyings with most contracts; the rest are summed as "Other"
# Percent in the money (negative: out of it) at which the moneyness histogram's bins start.
MONEYNESS_EDGES = tuple(
    Decimal(edge) for edge in ("-10", "-5", "-2", "-1", "-0.5", "0", "0.5", "1", "2", "5", "10")
)
PIN_PERCENT = Decimal(1)  # a strike this close to the price (either side, in percent) is a pin risk
OUTCOMES_BY_LABEL = {outcome.label: outcome for outcome in exercise.Outcome}


@register.simple_tag
def worksheet_charts(sheet: Worksheet) -> list[BarChart]:
    """The charts of the sheet on screen (its day, account and filters)."""
    return [outcomes_chart(sheet), moneyness_chart(sheet)]


def outcomes_by_underlying(sheet: Worksheet) -> dict[str, dict[exercise.Outcome, int]]:
    found: dict[str, dict[exercise.Outcome, int]] = {}
    for group in sheet.groups:
        outcomes = found.setdefault(group.underlying, {})
        for label, contracts in group.outcomes.items():
            outcome = OUTCOMES_BY_LABEL[label]
            outcomes[outcome] = outcomes.get(outcome, 0) + contracts
    return found


def near_strike(sheet: Worksheet) -> int:
    """Contracts (long and short) whose strike is within ``PIN_PERCENT`` of the price."""
    return sum(
        contracts
        for (percent, _), contracts in sheet.totals.by_moneyness.items()
        if percent is not None and abs(percent) <= PIN_PERCENT
    )


def outcomes_chart(sheet: Worksheet) -> BarChart:
    by_underlying = outcomes_by_underlying(sheet)
    present = [o for o in exercise.Outcome if any(o in outcomes for outcomes in by_underlying.values())]
    ranked = sorted(by_underlying.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    categories = [
        Category(underlying, tuple(Decimal(outcomes.get(o, 0)) for o in present))
        for underlying, outcomes in ranked[:UNDERLYINGS_SHOWN]
    ]
    if len(ranked) > UNDERLYINGS_SHOWN:
        rest = [outcomes for _, outcomes in ranked[UNDERLYINGS_SHOWN:]]
        others = tuple(Decimal(sum(outcomes.get(o, 0) for outcomes in rest)) for o in present)
        categories.append(Category(f"Other ({len(rest)} underlyings)", others))
    return BarChart(
        key="ws-outcomes",
        title="Contracts by outcome, per underlying",
        description=(
            "What happens at expiry to the contracts of each underlying, with the instructions in force "
            "(long: exercised or lapses; short: assignment expected or not)."
        ),
        series=tuple(Series(o.value.lower(), o.label) for o in present),
        categories=tuple(categories),
        empty_text="No option expires that day.",
        stacked=True,
    )


def moneyness_chart(sheet: Worksheet) -> BarChart:
    categories = histogram(
        (
            (percent, (Decimal(contracts), Decimal(0)) if long else (Decimal(0), Decimal(contracts)))
            for (percent, long), contracts in sheet.totals.by_moneyness.items()
        ),
        MONEYNESS_EDGES,
        unknown_label="No price",
        suffix="%",
    )
    near = near_strike(sheet)
    return BarChart(
        key="ws-moneyness",
        title=f"Moneyness: {near:,} contract{pluralize(near)} within \u00b1{PIN_PERCENT}% of the strike",
        description=(
            "Contracts by how far the underlying's price is in the money (positive) or out of it "
            "(negative), in percent of the strike; near zero is the pin risk."
        ),
        series=(Series("long", "Long"), Series("short", "Short")),
        categories=tuple(categories),
        empty_text="No option expires that day.",
        stacked=True,
    )
