"""Template helpers of the book: sortable column headers, and its rows."""

from collections.abc import Iterable
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.template.defaultfilters import floatformat
from django.urls import reverse
from django.utils.formats import localize
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from positions.models import InstrumentType, Position, PositionType

register = template.Library()

INSTRUMENT_TYPES = dict(InstrumentType.choices)
POSITION_TYPES = dict(PositionType.choices)
ROW = (
    '<tr data-instrument="{}">{}<td class="mono"><a href="{}">{}</a></td>'
    '<td class="mono symbol"><a href="{}">{}</a></td><td>{}</td><td>{}</td><td class="mono">{}{}</td>'
    '<td class="num">{}{}</td><td class="num{}">{}</td><td class="num">{}</td><td class="num">{}</td>'
    '<td class="num{}">{}</td><td class="num{}">{}</td><td class="num{}">{}</td></tr>\n'
)
EXPIRED = SafeString(
    ' <span class="pill muted" title="This contract expired; it takes no more instructions.">expired</span>'
)


@register.simple_tag(takes_context=True)
def sort_header(context: template.Context, key: str, label: str, numeric: bool = False) -> str:
    """A column header that sorts by ``key``, toggling the direction when it is already the sort."""
    filters = context["filters"]
    current = filters.sort == key
    direction = "desc" if current and not filters.descending else "asc"
    arrow = ("▼" if filters.descending else "▲") if current else ""
    query = context.get("sort_query", "")
    href = f"?{query}&sort={key}&dir={direction}" if query else f"?sort={key}&dir={direction}"
    return format_html(
        '<th scope="col" class="{}"{}><a href="{}">{}</a> {}</th>',
        "num" if numeric else "",
        format_html(' aria-sort="{}"', "descending" if filters.descending else "ascending")
        if current
        else "",
        href,
        label,
        arrow,
    )


def _neg(value: Decimal | None) -> str:
    return " neg" if value is not None and value < 0 else ""


# The book prints thousands of numbers a page: Django's ``intcomma``, ``floatformat`` and ``localize``
# (lazy settings and locale lookups per call) were a third of a 500-row page. These print exactly
# what they print for this project (en-us, no localisation: tests/positions/test_book_numbers.py),
# and hand anything unusual back to them.
_CENT = Decimal("0.01")
_WIDE = Context(prec=200)


def _money(value: Decimal | None) -> str:
    """``intcomma(floatformat(value, 2))``: two places rounded half up, thousands grouped, no -0.00."""
    if value is None:
        return ""
    try:
        cents = value.quantize(_CENT, rounding=ROUND_HALF_UP, context=_WIDE)
    except ArithmeticError:  # NaN, infinities, a number wider than the context
        return intcomma(floatformat(value, 2))
    # Digits, a sign, commas and a point: nothing to escape (``format_html`` skips safe strings).
    return SafeString(f"{abs(cents) if cents.is_zero() else cents:,f}")


def _grouped(value: Decimal) -> str:
    """``intcomma(value)`` of a decimal: its own digits, thousands grouped."""
    return SafeString(f"{value:,f}") if value.is_finite() else intcomma(value)


def _shown(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal) and value.is_finite():
        return SafeString(f"{value:f}")
    return str(localize(value))


@register.simple_tag
def book_rows(positions: Iterable[Position], business_date: date, selectable: bool) -> str:
    """The book's rows, built in Python: at 500 rows a page, the template language's lookups and a
    URL reversed per link were most of the page's time."""
    # One reverse per page; each row's link differs by its key only.
    detail = reverse("positions:detail", args=[0]).removesuffix("0/")
    account = reverse("positions:account_detail", args=[0]).removesuffix("0/")

    def cells(p: Position) -> tuple[object, ...]:
        expired = p.expiration_date is not None and p.expiration_date < business_date
        checkbox = (
            format_html(
                '<input type="checkbox" name="position" value="{}" aria-label="Select {}">', p.pk, p.symbol
            )
            if p.is_option and p.quantity > 0 and not expired
            else ""
        )
        return (
            p.instrument_id,
            format_html("<td>{}</td>", checkbox) if selectable else "",
            f"{account}{p.account.number}/",
            p.account.number,
            f"{detail}{p.pk}/",
            p.symbol,
            INSTRUMENT_TYPES.get(p.instrument_type, p.instrument_type),
            POSITION_TYPES.get(p.position_type, p.position_type),
            p.expiration_date.isoformat() if p.expiration_date else "",
            EXPIRED if expired else "",
            _shown(p.strike),
            f" {p.put_call}" if p.put_call else "",
            _neg(p.quantity),
            _grouped(p.quantity),
            _grouped(p.available_quantity),
            _shown(p.instrument_price),
            _neg(p.market_value),
            _money(p.market_value),
            _neg(p.unrealized_pnl),
            _money(p.unrealized_pnl),
            _neg(p.daily_unrealized_pnl),
            _money(p.daily_unrealized_pnl),
        )

    return format_html_join("", ROW, (cells(p) for p in positions))
