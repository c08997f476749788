"""The chart kernel: where bars go, the numbers beside them, histograms, the SVG's text alternative."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.template import Context, Template

from backoffice.charts import (
    NEGATIVE_PATTERN,
    PATTERNS,
    BarChart,
    Category,
    Marker,
    Series,
    format_minutes,
    format_money,
    histogram,
    layout,
)

D = Decimal


def signed_chart() -> BarChart:
    return BarChart(
        key="t-signed",
        title="Market value by underlying",
        description="Test chart.",
        series=(Series("mv", "Market value"),),
        categories=(Category("AAPL", (D("300"),)), Category("TSLA", (D("-100"),))),
        unit="money",
    )


def test_signed_bars_grow_either_side_of_zero_in_proportion():
    drawing = layout(signed_chart())
    aapl, tsla = drawing.rows
    [up], [down] = aapl.segments, tsla.segments
    assert up.x == drawing.zero_x and down.x + down.width == drawing.zero_x
    assert up.width == pytest.approx(3 * down.width, abs=D("0.2"))
    # Below zero reads differently in grayscale too (its own pattern) and in words (the minus sign).
    assert up.pattern == PATTERNS[0] and down.pattern == NEGATIVE_PATTERN
    assert aapl.value_text == "300.00" and tsla.value_text == "\u2212100.00"


def test_stacked_bars_follow_the_series_order_with_a_legend_entry_and_pattern_each():
    chart = BarChart(
        key="t-stacked",
        title="Contracts by outcome",
        description="",
        series=(Series("ex", "Exercised"), Series("lapses", "Lapses"), Series("unknown", "Unknown")),
        categories=(Category("AAPL", (D(5), D(0), D(5))), Category("MSFT", (D(10), D(10), D(0)))),
    )
    drawing = layout(chart)
    aapl, msft = drawing.rows
    assert [s.series for s in aapl.segments] == ["ex", "unknown"]  # no empty segment is drawn
    assert msft.segments[1].x == msft.segments[0].x + msft.segments[0].width
    assert sum(s.width for s in msft.segments) == pytest.approx(
        2 * sum(s.width for s in aapl.segments), abs=1
    )
    assert [item.pattern for item in drawing.legend] == list(PATTERNS[:3])
    assert aapl.value_text == "10" and msft.value_text == "20"
    assert chart.summary == "AAPL: 5 exercised, 5 unknown; MSFT: 10 exercised, 10 lapses."


def test_a_marker_beyond_every_bar_still_fits_and_notes_are_written_beside_the_number():
    chart = BarChart(
        key="t-marker",
        title="Freshness",
        description="",
        series=(Series("age", "Age"),),
        categories=(Category("Account 1", (D(5),)), Category("Account 2", (D(45),), "stale")),
        unit="minutes",
        marker=Marker(D(60), "stale after 60 min"),
    )
    drawing = layout(chart)
    assert drawing.marker_x is not None and drawing.marker_x <= drawing.value_x
    assert drawing.rows[1].value_text == "45 min stale"


def test_a_category_with_the_wrong_number_of_values_is_refused():
    with pytest.raises(ValueError):
        BarChart("k", "t", "d", (Series("a", "A"),), (Category("x", (D(1), D(2))),))


def test_histogram_bins_values_on_their_lower_edge_and_keeps_the_unknown_apart():
    categories = histogram(
        [(D("-3"), (D(1), D(0))), (D("0"), (D(2), D(1))), (D("0.99"), (D(4), D(0))), (None, (D(7), D(0)))],
        (D(-1), D(0), D(1)),
        unknown_label="No price",
        suffix="%",
    )
    assert [(c.label, c.values) for c in categories] == [
        ("< -1%", (D(1), D(0))),
        ("-1 to 0%", (D(0), D(0))),
        ("0 to 1%", (D(6), D(1))),
        ("\u2265 1%", (D(0), D(0))),
        ("No price", (D(7), D(0))),
    ]
    assert histogram([], (D(0),)) == []


def test_numbers_are_short_and_signed():
    assert format_money(D("-1234567")) == "\u22121.23M"
    assert format_money(D("15060")) == "15.1k"
    assert format_money(D("2.5")) == "2.50"
    assert format_minutes(D(3 * 24 * 60 + 125)) == "3 d 2 h"
    assert format_minutes(D(125)) == "2 h 05 min"
    assert format_minutes(D("0.4")) == "< 1 min"


def test_the_svg_carries_its_text_alternative_and_the_numbers_as_a_table():
    html = Template("{% load charts %}{% chart c %}").render(Context({"c": signed_chart()}))
    assert 'role="img"' in html and 'aria-label="Market value by underlying"' in html
    assert "<title>Market value by underlying</title>" in html
    assert '<desc id="t-signed-desc">Test chart. AAPL: 300.00; TSLA: \u2212100.00.</desc>' in html
    assert 'aria-describedby="t-signed-desc"' in html
    assert '<th scope="row">TSLA</th><td class="num">-100</td>' in html
    # No inline style (the CSP refuses it): colours and patterns come from classes and ids.
    assert "style=" not in html
    assert 'fill="url(#t-signed-negative)"' in html and 'id="t-signed-negative"' in html


def test_an_empty_chart_says_so_in_words():
    chart = BarChart("t-empty", "Nothing", "", (Series("a", "A"),), (), empty_text="No batch for today yet.")
    html = Template("{% load charts %}{% chart c %}").render(Context({"c": chart}))
    assert "No batch for today yet." in html and "<svg" not in html


def test_a_stacked_chart_of_one_series_still_names_it():
    chart = BarChart(
        "t-one", "Batches", "", (Series("draft", "Draft"),), (Category("Account 1", (D(2),)),), stacked=True
    )
    drawing = layout(chart)
    assert [item.label for item in drawing.legend] == ["Draft"]
    assert drawing.rows[0].segments[0].pattern == PATTERNS[0]
    assert chart.summary == "Account 1: 2 draft."
