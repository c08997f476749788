"""The hash chain: canonical content of a row and its SHA-256 link to the previous row.

The hash must come out the same when computed from the Python values before the INSERT and from
the values read back later. JSON goes through ``jsonb``, which keeps strings exactly but rewrites
numbers (``1e20`` comes back as ``100000000000000000000``, ``-0.0`` as ``0.0``), so numbers are
written in one normalised decimal form here rather than as Python prints them.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
from collections.abc import Mapping
from json.encoder import encode_basestring_ascii
from typing import Any

from backoffice.audit.models import BODY_FIELDS, GENESIS_HASH, SUMMARY_FIELDS

# Every column a row's hash covers: all it says but its id and the chain's own two columns
# (order does not matter: keys are sorted when serialised).
CONTENT_FIELDS: tuple[str, ...] = (*(name for name in SUMMARY_FIELDS if name != "id"), *BODY_FIELDS)

_NUMBER_CONTEXT = decimal.Context(prec=1000)
# What json.dumps does to a string with its defaults (ASCII escapes), without its per-call set-up.
_string = encode_basestring_ascii


def _number(value: int | float | decimal.Decimal) -> str:
    number = decimal.Decimal(repr(value)) if isinstance(value, float) else decimal.Decimal(value)
    if number.is_zero():
        return "0"  # PostgreSQL numerics have no negative zero
    return str(number.normalize(_NUMBER_CONTEXT))


def canonical_json(value: Any, _done: dict[int, str] | None = None) -> str:
    """Sorted keys, no whitespace, ASCII only, normalised numbers, datetimes as UTC ISO strings.

    ``_done`` remembers the text of each dict and list already written in this call, by identity:
    a tree that appears twice (a decision's unchanged rows, before and after) is written once.
    """
    # The common types first, by exact type: audit bodies are large trees of dicts, lists and strings.
    kind = type(value)
    if kind is str:
        return _string(value)
    if kind is dict or kind is list:
        if _done is None:
            _done = {}
        elif (text := _done.get(id(value))) is not None:
            return text
        if kind is dict:
            items = sorted((str(key), item) for key, item in value.items())
            members = (f"{_string(key)}:{canonical_json(item, _done)}" for key, item in items)
            text = "{" + ",".join(members) + "}"
        else:
            text = "[" + ",".join(canonical_json(item, _done) for item in value) + "]"
        _done[id(value)] = text
        return text
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, int | float | decimal.Decimal):
        return _number(value)
    if isinstance(value, dt.datetime):
        return json.dumps(value.astimezone(dt.UTC).isoformat())
    if isinstance(value, Mapping):
        # Its items may be made afresh and freed as they go, so their identities are not remembered.
        items = sorted((str(key), item) for key, item in value.items())
        return "{" + ",".join(f"{_string(key)}:{canonical_json(item)}" for key, item in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(canonical_json(item, _done) for item in value) + "]"
    raise TypeError(f"not canonical JSON: {type(value).__name__}")


def row_hash(prev_hash: str, content: Mapping[str, Any]) -> str:
    payload = canonical_json({field: content.get(field) for field in CONTENT_FIELDS})
    return hashlib.sha256((prev_hash + payload).encode("ascii")).hexdigest()


__all__ = ["CONTENT_FIELDS", "GENESIS_HASH", "canonical_json", "row_hash"]
