"""How the simulated clearing firm answers (``PUT /sandbox/behaviour``), and the request values the
endpoints read (booleans, whole contracts)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.wire import ApiError

MAX_CONTRACTS = 10**9  # beyond any real position; keeps absurd numbers out of arithmetic and SQLite


@dataclass
class Behaviour:
    """How the simulated clearing firm answers; ``PUT /sandbox/behaviour`` changes it."""

    accept_delay_seconds: float = 2.0
    outcome: str = "ACCEPTED"  # ACCEPTED, REJECTED, or RANDOM (rejects reject_rate of them)
    reject_rate: float = 0.0
    rejection_reason: str = "Rejected by the clearing venue"
    cancel_delay_seconds: float = 2.0
    cancel_outcome: str = "CANCELLED"  # or CANCEL_FAILED
    cancel_failure_reason: str = "Cancel rejected by the clearing venue"
    cutoff: str = "17:30"  # America/New_York, the last minute instructions are taken each day

    def changed(self, body: Any) -> Behaviour:
        if not isinstance(body, dict):
            raise ApiError(400, "behaviour must be a JSON object")
        known = {f.name for f in fields(self)}
        unknown = set(body) - known
        if unknown:
            raise ApiError(400, f"unknown behaviour field(s): {', '.join(sorted(unknown))}")
        new = Behaviour(**{**asdict(self), **body})
        new.validate()
        return new

    def validate(self) -> None:
        for name in ("accept_delay_seconds", "cancel_delay_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 86_400:
                raise ApiError(400, f"{name} must be a number of seconds from 0 to 86400")
        if self.outcome not in {"ACCEPTED", "REJECTED", "RANDOM"}:
            raise ApiError(400, "outcome must be ACCEPTED, REJECTED or RANDOM")
        if isinstance(self.reject_rate, bool) or not isinstance(self.reject_rate, int | float):
            raise ApiError(400, "reject_rate must be a number between 0 and 1")
        if not 0 <= self.reject_rate <= 1:
            raise ApiError(400, "reject_rate must be a number between 0 and 1")
        if self.cancel_outcome not in {"CANCELLED", "CANCEL_FAILED"}:
            raise ApiError(400, "cancel_outcome must be CANCELLED or CANCEL_FAILED")
        for name in ("rejection_reason", "cancel_failure_reason"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ApiError(400, f"{name} must be a non-empty string")
        self.cutoff_time()

    def cutoff_time(self) -> tuple[int, int]:
        try:
            hours, minutes = (int(p) for p in str(self.cutoff).split(":"))
            if not (0 <= hours < 24 and 0 <= minutes < 60):
                raise ValueError
        except ValueError as exc:
            raise ApiError(400, "cutoff must be HH:MM (America/New_York)") from exc
        return hours, minutes


def parse_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "0", "no"}:
        return False
    raise ApiError(400, f"{name} must be true or false")


def parse_contracts(value: Any) -> int | None:
    """A quantity of whole contracts > 0, given as a string (or a JSON integer); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value <= MAX_CONTRACTS else None
    if not isinstance(value, str):
        return None
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        return None
    if not number.is_finite() or not 0 < number <= MAX_CONTRACTS or number != number.to_integral_value():
        return None
    return int(number)
