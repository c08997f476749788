"""Model fields shared by the apps."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models


class WireDecimalField(models.DecimalField):
    """An exact decimal exactly as Clear Street sent it: PostgreSQL ``numeric`` with no fixed scale.

    "2700.00" is stored and read back as ``Decimal("2700.00")``: no rounding to a column scale we
    chose, no float anywhere. Quantities, prices and P&L all use it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", None)
        kwargs.setdefault("decimal_places", None)
        super().__init__(*args, **kwargs)

    def check(self, **kwargs: Any) -> list:
        # DecimalField insists on max_digits/decimal_places; an unconstrained numeric needs neither.
        return models.Field.check(self, **kwargs)

    def db_type(self, connection) -> str:
        return "numeric"

    @property
    def validators(self) -> list[Any]:
        # DecimalField adds a digits validator built from max_digits; an unconstrained numeric has none.
        return list(self._validators)  # type: ignore[attr-defined]

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("max_digits", None)
        kwargs.pop("decimal_places", None)
        return name, path, args, kwargs

    def to_python(self, value: Any) -> Decimal | None:
        if value is None or isinstance(value, Decimal):
            return value
        return super().to_python(value)
