"""Cursor pagination, always over a unique key so that no row is skipped or repeated between pages."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import Q, QuerySet
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from backoffice.inputs import storable_decimal, whole_number
from positions.queries import SORTS, BookFilters

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def page_size_of(request: Request, name: str = "page_size") -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return DEFAULT_PAGE_SIZE
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ValidationError({name: [f"Give a whole number from 1 to {MAX_PAGE_SIZE}."]})
    return size


PAGE_SIZE_SCHEMA: dict[str, Any] = {
    "name": "page_size",
    "required": False,
    "in": "query",
    "description": f"Rows per page, 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}).",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
}
CURSOR_SCHEMA: dict[str, Any] = {
    "name": "cursor",
    "required": False,
    "in": "query",
    "description": "The `next` (or `previous`) link's cursor; opaque.",
    "schema": {"type": "string"},
}


PAGE_SIZE_PARAMETER = OpenApiParameter(
    "page_size", PAGE_SIZE_SCHEMA["schema"], description=PAGE_SIZE_SCHEMA["description"]
)
CURSOR_PARAMETER = OpenApiParameter("cursor", str, description=CURSOR_SCHEMA["description"])


class KeysetPagination(CursorPagination):
    """DRF's cursor pagination with the ordering on a unique key, a page size cap that is an error
    rather than a silent clamp, and a bad cursor as a 400 rather than a 404."""

    ordering = "-id"
    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    # Whether the ordering key is a whole number (ids, account numbers) or text (Clear Street's ids).
    numeric_key = True

    def get_page_size(self, request: Request) -> int:
        return page_size_of(request)

    def paginate_queryset(
        self, queryset: QuerySet[Any, Any] | Sequence[Any], request: Request, view: Any = None
    ) -> list[Any] | None:
        key = self.ordering if isinstance(self.ordering, str) else self.ordering[0]
        model = queryset.model if isinstance(queryset, QuerySet) else None
        field = model._meta.get_field(key.lstrip("-")) if model is not None else None
        self.numeric_key = field is None or field.get_internal_type() in {
            "AutoField",
            "BigAutoField",
            "IntegerField",
            "BigIntegerField",
            "PositiveIntegerField",
            "PositiveBigIntegerField",
        }
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Request) -> Any:
        invalid = ValidationError(
            {"cursor": ["This page cursor is not valid; start again from the first page."]}
        )
        try:
            cursor = super().decode_cursor(request)
        except Exception as exc:  # DRF raises NotFound
            raise invalid from exc
        # On a whole-number key a position of any other shape would reach the database as a comparison
        # it cannot make; a text key takes any text.
        if (
            self.numeric_key
            and cursor is not None
            and cursor.position is not None
            and whole_number(str(cursor.position)) is None
        ):
            raise invalid
        return cursor

    def get_schema_operation_parameters(self, view) -> list[dict[str, Any]]:
        return [CURSOR_SCHEMA, PAGE_SIZE_SCHEMA]

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return page_schema(schema)


def page_schema(results: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["next", "previous", "results", *(extra or {})],
        "properties": {
            "next": {"type": "string", "nullable": True, "format": "uri"},
            "previous": {"type": "string", "nullable": True, "format": "uri"},
            "results": results,
            **(extra or {}),
        },
    }


def ordered_by(field: str) -> type[KeysetPagination]:
    return type(f"KeysetPagination_{field.strip('-')}", (KeysetPagination,), {"ordering": field})


# --- the book: the page's sort, then (account, id), keyset over all three ------------------------

_DECIMAL_SORTS = {"quantity", "market_value", "unrealized_pnl", "daily_unrealized_pnl"}
_DATE_SORTS = {"expiration_date"}


class BookCursor:
    """Where a page of the book ended: the sort value (None sorts last), the account's key, the row id.
    ``FORMAT`` leads the token: a cursor made when the tie was the account's number is refused
    (start again), never read as a key."""

    FORMAT = 2

    def __init__(self, sort: str, descending: bool, value: Any, account_id: int, row_id: int) -> None:
        self.sort, self.descending, self.value = sort, descending, value
        self.account_id, self.row_id = account_id, row_id

    def encode(self) -> str:
        value = None if self.value is None else str(self.value)
        raw = json.dumps([self.FORMAT, self.sort, self.descending, value, self.account_id, self.row_id])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, filters: BookFilters) -> BookCursor:
        invalid = ValidationError(
            {"cursor": ["This page cursor is not valid for these filters; start again."]}
        )
        try:
            raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            version, sort, descending, value, account_id, row_id = raw
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise invalid from None
        if version != cls.FORMAT:
            raise invalid
        if sort != filters.sort or descending != filters.descending:
            raise invalid
        if not isinstance(account_id, int) or not isinstance(row_id, int) or isinstance(value, bool):
            raise invalid
        if value is not None:
            column = SORTS.get(sort, "symbol")
            try:
                if not isinstance(value, str):
                    raise ValueError
                if column in _DECIMAL_SORTS:
                    value = Decimal(value)
                    if not storable_decimal(value):
                        raise ValueError
                elif column in _DATE_SORTS:
                    value = dt.date.fromisoformat(value)
            except (ValueError, InvalidOperation):
                raise invalid from None
        return cls(sort, descending, value, account_id, row_id)


def book_after(positions: QuerySet, filters: BookFilters, cursor: BookCursor) -> QuerySet:
    """Rows after the cursor in ``positions.queries.book``'s order (primary nulls last, then account
    and id in the primary's direction)."""
    column = SORTS.get(filters.sort, "symbol")
    after = "lt" if filters.descending else "gt"
    tie = Q(**{f"account_id__{after}": cursor.account_id}) | Q(
        **{"account_id": cursor.account_id, f"id__{after}": cursor.row_id}
    )
    if cursor.value is None:  # in the nulls, which come last either way
        return positions.filter(Q(**{f"{column}__isnull": True}) & tie)
    beyond = f"{column}__lt" if filters.descending else f"{column}__gt"
    return positions.filter(
        Q(**{beyond: cursor.value}) | (Q(**{column: cursor.value}) & tie) | Q(**{f"{column}__isnull": True})
    )


def book_page(request: Request, positions: QuerySet, filters: BookFilters) -> tuple[list, str | None]:
    size = page_size_of(request)
    token = request.query_params.get("cursor")
    if token:
        positions = book_after(positions, filters, BookCursor.decode(token, filters))
    rows = list(positions[: size + 1])
    page = rows[:size]
    next_url = None
    if len(rows) > size:
        last = page[-1]
        cursor = BookCursor(
            filters.sort,
            filters.descending,
            getattr(last, SORTS.get(filters.sort, "symbol")),
            last.account_id,
            last.pk,
        )
        next_url = replace_query_param(request.build_absolute_uri(), "cursor", cursor.encode())
    return page, next_url


def paginated(results: Any, next_url: str | None, previous_url: str | None = None, **extra: Any) -> Response:
    return Response({"next": next_url, "previous": previous_url, "results": results, **extra})
