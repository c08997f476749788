"""Server-drawn charts: horizontal bars (signed or stacked) and histograms, laid out for inline SVG.

A page's figures arrive as a ``BarChart`` (categories, each with one value per series); ``layout``
turns it into rectangles and text a template draws (``templates/includes/chart.html``, through the
``{% chart %}`` tag), so no script runs in the browser and the CSP stays as it is. Every series has
a fill pattern as well as a colour, and every bar its number written beside it, so a chart reads in
grayscale; the template adds the title, a description and the numbers as a table.

Geometry is computed in ``Decimal`` like every amount here, rounded to a tenth of a pixel.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

Unit = Literal["count", "money", "minutes"]

# Fill patterns, in the order series take them: each differs from its neighbours in grayscale.
PATTERNS = ("solid", "hatch", "dots", "cross", "light", "vlines")
NEGATIVE_PATTERN = "negative"  # a signed chart's bars below zero

WIDTH = 680
LABEL_WIDTH = 150
VALUE_WIDTH = 130
ROW_HEIGHT = 22
BAR_HEIGHT = 14
LEGEND_HEIGHT = 22
MARKER_HEIGHT = 16
MINUS = "\u2212"


@dataclass(frozen=True)
class Series:
    key: str
    label: str


@dataclass(frozen=True)
class Category:
    label: str
    values: tuple[Decimal, ...]  # one per series
    note: str = ""  # said in words beside the number (e.g. "stale"), never by colour alone

    @property
    def total(self) -> Decimal:
        return sum(self.values, Decimal(0))


@dataclass(frozen=True)
class Marker:
    """A reference line across the bars, e.g. the staleness threshold."""

    value: Decimal
    label: str


@dataclass(frozen=True)
class BarChart:
    key: str  # unique on its page: the ids of the SVG's parts start with it
    title: str
    description: str
    series: tuple[Series, ...]
    categories: tuple[Category, ...]
    unit: Unit = "count"
    marker: Marker | None = None
    empty_text: str = "Nothing to show."
    stacked: bool = False  # parts of a whole: a legend even for one series, and no negative bars

    def __post_init__(self) -> None:
        for category in self.categories:
            if len(category.values) != len(self.series):
                raise ValueError(
                    f"{category.label!r} has {len(category.values)} values for {len(self.series)} series"
                )

    @property
    def is_empty(self) -> bool:
        return not self.categories

    def format(self, value: Decimal) -> str:
        return FORMATS[self.unit](value)

    @property
    def summary(self) -> str:
        """The figures in one sentence, for the SVG's description."""
        if not self.categories:
            return self.empty_text
        parts = []
        for category in self.categories:
            if len(self.series) == 1 and not self.stacked:
                figures = self.format(category.total)
            else:
                figures = ", ".join(
                    f"{self.format(value)} {series.label.lower()}"
                    for series, value in zip(self.series, category.values, strict=True)
                    if value
                ) or self.format(Decimal(0))
            note = f" ({category.note})" if category.note else ""
            parts.append(f"{category.label}: {figures}{note}")
        return "; ".join(parts) + "."


# --- numbers as text -------------------------------------------------------------------------------


def _signed(value: Decimal, text: str) -> str:
    return f"{MINUS}{text}" if value < 0 else text


def format_count(value: Decimal) -> str:
    return _signed(value, f"{abs(int(value)):,}")


def format_money(value: Decimal) -> str:
    """Short amounts for a bar's end: 950.25, 12.3k, 4.56M, 1.20B."""
    size = abs(value)
    for limit, unit, suffix in (
        (Decimal(10) ** 9, Decimal(10) ** 9, "B"),
        (Decimal(10) ** 6, Decimal(10) ** 6, "M"),
        (Decimal(10) ** 4, Decimal(10) ** 3, "k"),
    ):
        if size >= limit:
            digits = 1 if suffix == "k" else 2
            return _signed(value, f"{size / unit:,.{digits}f}{suffix}")
    return _signed(value, f"{size:,.2f}")


def format_minutes(value: Decimal) -> str:
    if abs(value) < 1:
        return "< 1 min"
    minutes = int(abs(value))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        text = f"{days} d {hours} h"
    elif hours:
        text = f"{hours} h {mins:02d} min"
    else:
        text = f"{mins} min"
    return _signed(value, text)


FORMATS: dict[str, Callable[[Decimal], str]] = {
    "count": format_count,
    "money": format_money,
    "minutes": format_minutes,
}


# --- building charts from figures --------------------------------------------------------------------


def histogram(
    values: Iterable[tuple[Decimal | None, tuple[Decimal, ...]]],
    edges: Sequence[Decimal],
    *,
    unknown_label: str = "Unknown",
    suffix: str = "",
) -> list[Category]:
    """Bins weighted values into ``len(edges) + 1`` categories (below the first edge, between each
    pair, from the last one up), plus one for values that are ``None`` when there are any.

    Each value carries one weight per series (e.g. long and short contracts); a value equal to an
    edge falls in the bin that starts at it.
    """
    if list(edges) != sorted(set(edges)):
        raise ValueError("histogram edges must be increasing")
    labels = [f"< {edges[0]}{suffix}"]
    labels += [f"{low} to {high}{suffix}" for low, high in itertools.pairwise(edges)]
    labels.append(f"\u2265 {edges[-1]}{suffix}")
    bins: list[list[Decimal]] = []
    unknown: list[Decimal] | None = None
    for value, weights in values:
        if not bins:
            bins = [[Decimal(0)] * len(weights) for _ in labels]
        if value is None:
            unknown = unknown or [Decimal(0)] * len(weights)
            target = unknown
        else:
            target = bins[sum(1 for edge in edges if value >= edge)]
        for i, weight in enumerate(weights):
            target[i] += weight
    categories = [Category(label, tuple(weights)) for label, weights in zip(labels, bins, strict=False)]
    if unknown is not None:
        categories.append(Category(unknown_label, tuple(unknown)))
    return categories


# --- layout ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    x: Decimal
    width: Decimal
    pattern: str
    series: str
    text: str  # for the segment's own tooltip (<title>)


@dataclass(frozen=True)
class Row:
    category: Category
    y: Decimal  # top of the bar
    text_y: Decimal  # baseline of the row's texts
    segments: list[Segment]
    value_text: str


@dataclass(frozen=True)
class LegendItem:
    x: Decimal
    pattern: str
    label: str

    @property
    def text_x(self) -> Decimal:
        return self.x + 18


@dataclass(frozen=True)
class Drawing:
    chart: BarChart
    width: int
    height: int
    label_x: int
    value_x: int
    zero_x: Decimal
    top: int
    bottom: int
    rows: list[Row]
    legend: list[LegendItem] = field(default_factory=list)
    marker_x: Decimal | None = None
    patterns: tuple[str, ...] = (*PATTERNS, NEGATIVE_PATTERN)


def _px(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.1"))


def layout(chart: BarChart) -> Drawing:
    """Where each bar, number and legend entry goes: bars grow right from zero for positive values
    and left for negative ones (stacked in series order), the scale fits the longest of each side and
    the marker, and each row's total is written at the right."""
    signed_single = len(chart.series) == 1 and not chart.stacked
    legend: list[LegendItem] = []
    if len(chart.series) > 1 or chart.stacked:
        x = Decimal(LABEL_WIDTH)
        for index, series in enumerate(chart.series):
            legend.append(LegendItem(x, PATTERNS[index % len(PATTERNS)], series.label))
            x += 24 + 7 * len(series.label)
    top = (LEGEND_HEIGHT if legend else 4) + (MARKER_HEIGHT if chart.marker else 0)
    positive = max(
        [sum((v for v in c.values if v > 0), Decimal(0)) for c in chart.categories] or [Decimal(0)]
    )
    negative = max(
        [-sum((v for v in c.values if v < 0), Decimal(0)) for c in chart.categories] or [Decimal(0)]
    )
    if chart.marker is not None:
        positive = max(positive, chart.marker.value)
    span = positive + negative or Decimal(1)
    plot = Decimal(WIDTH - LABEL_WIDTH - VALUE_WIDTH - 8)
    scale = plot / span
    zero = Decimal(LABEL_WIDTH) + negative * scale
    rows = []
    for index, category in enumerate(chart.categories):
        y = Decimal(top + index * ROW_HEIGHT + (ROW_HEIGHT - BAR_HEIGHT) // 2)
        right, left = zero, zero
        segments = []
        for position, (series, value) in enumerate(zip(chart.series, category.values, strict=True)):
            if not value:
                continue
            width = abs(value) * scale
            if value > 0:
                x, right = right, right + width
            else:
                left -= width
                x = left
            pattern = NEGATIVE_PATTERN if signed_single and value < 0 else PATTERNS[position % len(PATTERNS)]
            segments.append(
                Segment(
                    _px(x),
                    max(_px(width), Decimal("0.5")),
                    pattern,
                    series.key,
                    f"{series.label}: {chart.format(value)}",
                )
            )
        text = chart.format(category.total)
        rows.append(
            Row(
                category,
                y,
                y + BAR_HEIGHT - 3,
                segments,
                f"{text} {category.note}" if category.note else text,
            )
        )
    bottom = top + len(chart.categories) * ROW_HEIGHT
    return Drawing(
        chart=chart,
        width=WIDTH,
        height=bottom + 4,
        label_x=LABEL_WIDTH - 6,
        value_x=WIDTH - VALUE_WIDTH,
        zero_x=_px(zero),
        top=top,
        bottom=bottom,
        rows=rows,
        legend=legend,
        marker_x=_px(zero + chart.marker.value * scale) if chart.marker is not None else None,
    )
