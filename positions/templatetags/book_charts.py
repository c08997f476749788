"""The book's pictures (``templates/positions/_book_charts.html``): market value and unrealised P&L
of the filtered book, by underlying and by expiry."""

from __future__ import annotations

from django import template

from backoffice.charts import BarChart, Category, Series
from backoffice.roles import AnyUser
from positions import queries
from positions.queries import BookFilters, BookSlice, BookTotals

register = template.Library()

FIGURES = (
    ("market_value", "Market value"),
    ("unrealized_pnl", "Unrealised P&L"),
)


@register.simple_tag(takes_context=True)
def book_charts(context: template.Context, filters: BookFilters, totals: BookTotals) -> list[BarChart]:
    """The four charts of the book on screen (``filters``), whose ``totals`` the page shows."""
    user: AnyUser = context["request"].user
    breakdown = queries.book_breakdown_of_snapshots(filters, user, totals)
    return [
        _chart(f"book-{figure.replace('_', '-')}-{by}", label, by, figure, slices)
        for by, slices in (("underlying", breakdown.by_underlying), ("expiry", breakdown.by_expiry))
        for figure, label in FIGURES
    ]


def _chart(key: str, label: str, by: str, figure: str, slices: list[BookSlice]) -> BarChart:
    return BarChart(
        key=key,
        title=f"{label} by {by}",
        description=(
            f"The positions on screen, the largest {queries.CHART_LIMIT} by market value and the rest as "
            "Other; bars left of the line are negative."
        ),
        series=(Series(figure, label),),
        categories=tuple(Category(s.label, (getattr(s, figure),)) for s in slices),
        unit="money",
        empty_text="No positions match these filters.",
    )
