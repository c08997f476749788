"""The book's own number printing prints exactly what Django's filters print for this project."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.humanize.templatetags.humanize import intcomma
from django.template.defaultfilters import floatformat
from django.utils.formats import localize

from positions.templatetags.book_tags import _grouped, _money, _shown

VALUES = [
    "0",
    "-0",
    "0.00",
    "-0.004",
    "0.005",
    "-0.005",
    "1.005",
    "2.675",
    "12",
    "999.995",
    "1000",
    "-1234.5",
    "1234567.891",
    "-98765432109876543210.125",
    "2700.00",
    "0.0001",
    "1E+3",
    "1.5E-7",
    "123456789012345678901234567890.12345",
]


@pytest.mark.parametrize("text", VALUES)
def test_money_grouping_and_plain_print_as_djangos_filters(text):
    value = Decimal(text)
    assert _money(value) == intcomma(floatformat(value, 2))
    assert _grouped(value) == intcomma(value)
    assert _shown(value) == str(localize(value))


def test_nothing_prints_as_nothing():
    assert _money(None) == "" and _shown(None) == ""
