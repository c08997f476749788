"""Make anything JSON-safe for the audit table, and keep secrets out of it.

The client redacts before it calls us; this is the second line: header and body keys that name a
credential are replaced, and the configured API key's value is scrubbed from every string.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import math
import uuid
from collections.abc import Mapping
from typing import Any

from django.conf import settings

REDACTED = "[REDACTED]"
_SECRET_MARKERS = ("apikey", "token", "secret", "password", "authorization", "cookie")
# Pagination cursors of the positions API: opaque but not credentials, and compliance needs them
# to tell which page a call asked for.
_NOT_SECRETS = frozenset({"pagetoken", "nextpagetoken", "previouspagetoken"})
_MAX_DEPTH = 64


@functools.lru_cache(maxsize=4096)  # a sync's pages repeat the same few dozen key names
def is_secret_key(name: str) -> bool:
    squashed = name.lower().replace("-", "").replace("_", "")
    return squashed not in _NOT_SECRETS and any(marker in squashed for marker in _SECRET_MARKERS)


def scrub(text: str) -> str:
    """Remove the API key's value and the bytes PostgreSQL cannot store (NUL, lone surrogates)."""
    key = settings.CLEAR_STREET_API_KEY
    if text.isascii() and "\x00" not in text and not (key and key in text):
        return text  # the common case, decided in C without copying
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    if key and key in text:
        text = text.replace(key, REDACTED)
    return text


def scrub_optional(text: Any) -> str | None:
    return None if text is None else scrub(str(text))


def sanitize(value: Any, _depth: int = 0) -> Any:
    """A JSON tree of dict/list/str/int/float/bool/None, redacted and scrubbed."""
    # The common types first, by exact type: snapshots and bodies are large trees of them.
    kind = type(value)
    if kind is str:
        return scrub(value)
    if kind is dict and _depth <= _MAX_DEPTH:
        return {
            scrub(str(key)): REDACTED if is_secret_key(str(key)) else sanitize(item, _depth + 1)
            for key, item in value.items()
        }
    if kind is list and _depth <= _MAX_DEPTH:
        return [sanitize(item, _depth + 1) for item in value]
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # jsonb has no NaN or Infinity
    if _depth > _MAX_DEPTH:
        return scrub(repr(value)[:1000])
    if isinstance(value, decimal.Decimal):
        return str(value)  # decimals travel as strings, as on the wire
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return scrub(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, Mapping) or hasattr(value, "items"):  # httpx.Headers and friends
        return {
            scrub(str(key)): REDACTED if is_secret_key(str(key)) else sanitize(item, _depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [sanitize(item, _depth + 1) for item in value]
    return scrub(str(value))


def sanitize_pair(before: Any, after: Any) -> tuple[Any, Any]:
    """``sanitize`` of two snapshots of one thing (a decision's before and after), where each value of
    ``after`` that did not change is the very tree made for ``before``: a transition of a 500-row
    batch redacts its rows once. Unchanged means the same type, equal and printed alike."""
    clean_before = sanitize(before)
    if type(before) is not dict or type(after) is not dict:
        return clean_before, sanitize(after)
    clean_after = {}
    for key, item in after.items():
        name = str(key)
        if is_secret_key(name):
            clean_after[scrub(name)] = REDACTED
        elif key in before and _unchanged(before[key], item):
            clean_after[scrub(name)] = clean_before[scrub(name)]
        else:
            clean_after[scrub(name)] = sanitize(item, 1)
    return clean_before, clean_after


def _unchanged(old: Any, new: Any) -> bool:
    # 1, True, 1.0 and Decimal(1) are equal but recorded differently; their reprs tell them apart.
    return type(old) is type(new) and old == new and repr(old) == repr(new)
