"""Wire formats shared by every endpoint: the envelope, decimals, timestamps and ids."""

from __future__ import annotations

import json
import os
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

CENTS = Decimal("0.01")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class ApiError(Exception):
    """A client-visible error: becomes ``{"data": null, "error": {...}}`` with this HTTP status."""

    def __init__(self, status: int, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or []


def money(value: Decimal) -> str:
    """Prices and amounts as the seeds show them: two decimals, e.g. ``"15050.00"``."""
    return str(value.quantize(CENTS))


def quantity(value: Decimal) -> str:
    """Quantities as the seeds show them: no trailing zeros, e.g. ``"100"``, ``"-50"``."""
    text = format(value.normalize(), "f")
    return "0" if text in {"-0", "0"} else text


def instruction_time(epoch_us: int) -> str:
    """Instruction timestamps: whole seconds, e.g. ``"2026-04-24T14:30:00Z"``."""
    return datetime.fromtimestamp(epoch_us // 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def order_time(epoch_us: int) -> str:
    """Order timestamps: nanoseconds, e.g. ``"2025-10-03T14:01:15.000000000Z"``."""
    seconds, micros = divmod(epoch_us, 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{micros:06d}000Z"


def uuid7(epoch_us: int) -> str:
    """A time-ordered UUIDv7 (the form of the seeds' order and instruction ids)."""
    millis = (epoch_us // 1000) & ((1 << 48) - 1)
    rand_a = int.from_bytes(os.urandom(2), "big") & 0xFFF
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    return str(uuid.UUID(int=(millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b))


def is_uuid(text: str) -> bool:
    return bool(UUID_RE.match(text))


class RawJsonArray(list):
    """A list of already-serialized JSON objects, spliced into the body without re-encoding.

    Positions are stored as ready JSON documents, so a 1000-row page costs one string join.
    """


def envelope(
    data: Any = None, error: ApiError | None = None, metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The documented ``BaseResponse``: every answer, errors included, carries a fresh request id."""
    body_error = None
    if error is not None:
        body_error = {"code": error.status, "message": error.message, "details": error.details}
    return {
        "data": data,
        "error": body_error,
        "metadata": {"request_id": str(uuid.uuid4()), **(metadata or {})},
    }


def dumps(payload: Any) -> bytes:
    """Serialize an envelope; a ``RawJsonArray`` in ``data`` is spliced in as is."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if isinstance(data, RawJsonArray):
        rest = json.dumps({k: v for k, v in payload.items() if k != "data"}, separators=(",", ":"))
        return ('{"data":[' + ",".join(data) + "]," + rest[1:]).encode()
    return json.dumps(payload, separators=(",", ":")).encode()
