"""``{% chart some_bar_chart %}``: a ``backoffice.charts.BarChart`` drawn as inline SVG with its text
alternative (title, description, the numbers as a table)."""

from __future__ import annotations

from typing import Any

from django import template

from backoffice.charts import BarChart, layout

register = template.Library()


@register.inclusion_tag("includes/chart.html")
def chart(bar_chart: BarChart | None) -> dict[str, Any]:
    return {"drawing": layout(bar_chart) if bar_chart is not None else None}
