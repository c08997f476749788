"""The worksheet's pictures (``templates/instructions/_worksheet_charts.html``): contracts by outcome
per underlying, and how far the strikes are from the price (pin risk)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django import forms, template
from django.template.defaultfilters import pluralize

from backoffice.charts import BarChart, Category, Series, histogram
from backoffice.roles import AnyUser
from instructions import exercise
from instructions.queries.charts import MONEYNESS_EDGES, PIN_PERCENT, WorksheetFigures, worksheet_figures

register = template.Library()

UNDERLYINGS_SHOWN = 12  # the underlyings with most contracts; the rest are summed as "Other"


@register.simple_tag(takes_context=True)
def worksheet_charts(context: template.Context, day: date | None, form: forms.Form) -> list[BarChart]:
    """The charts of the sheet on screen: its ``day``, and the account its filter ``form`` chose."""
    user: AnyUser = context["request"].user
    account = form.cleaned_data.get("account") if form.is_bound and form.is_valid() else None
    account_ids = (int(account),) if account else ()
    figures = worksheet_figures(user, day, account_ids)
    return [outcomes_chart(figures), moneyness_chart(figures)]


def outcomes_chart(figures: WorksheetFigures) -> BarChart:
    by_underlying = figures.outcomes_by_underlying
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


def moneyness_chart(figures: WorksheetFigures) -> BarChart:
    categories = histogram(
        ((line.moneyness, (Decimal(line.long), Decimal(line.short))) for line in figures.lines),
        MONEYNESS_EDGES,
        unknown_label="No price",
        suffix="%",
    )
    near = figures.near_strike
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
