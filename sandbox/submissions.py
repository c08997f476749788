"""What a submit's body must hold: a JSON array of well-formed instructions, or nothing is stored."""

from __future__ import annotations

import json
from typing import Any

from sandbox.behaviour import parse_contracts
from sandbox.wire import ApiError

MAX_BATCH = 1000
INSTRUCTION_TYPES = ("EXERCISE", "DO_NOT_EXERCISE", "CONTRARY_EXERCISE")


def parse_batch(body: bytes) -> list[dict[str, Any]]:
    """Pre-flight: the whole batch is refused (nothing stored) unless every row is well formed."""
    try:
        rows = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from exc
    if not isinstance(rows, list):
        raise ApiError(400, "request body must be a JSON array of instructions")
    if not rows:
        raise ApiError(400, "the batch holds no instruction")
    if len(rows) > MAX_BATCH:
        raise ApiError(400, f"a batch holds at most {MAX_BATCH} instructions")
    problems: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        problem = row_problem(row)
        if problem:
            problems.append({"index": index, "reason": problem})
    if problems:
        first = problems[0]
        raise ApiError(
            400, f"instruction {first['index']}: {first['reason']}; nothing was submitted", problems
        )
    return rows


def row_problem(row: Any) -> str | None:
    if not isinstance(row, dict):
        return "each instruction must be a JSON object"
    missing = [name for name in ("instruction_type", "instrument_id", "quantity") if row.get(name) is None]
    if missing:
        return f"missing {', '.join(missing)}"
    if row["instruction_type"] not in INSTRUCTION_TYPES:
        return f"instruction_type must be one of {', '.join(INSTRUCTION_TYPES)}"
    if not isinstance(row["instrument_id"], str) or not row["instrument_id"].strip():
        return "instrument_id must be a non-empty string"
    if parse_contracts(row["quantity"]) is None:
        return f"quantity must be a whole number of contracts greater than zero; got {row['quantity']!r}"
    instruction_id = row.get("instruction_id")
    if instruction_id is not None and (
        not isinstance(instruction_id, str) or not 1 <= len(instruction_id) <= 128
    ):
        return "instruction_id must be a string of 1 to 128 characters"
    return None
