"""Fault injection per endpoint, set through ``PUT /sandbox/faults``.

A rule applies to one endpoint name (or ``"*"`` for every ``/v1/`` endpoint)::

    {"latency_ms": 250,        # sleep before answering
     "error_rate": 0.5,        # share of requests answered with error_status (default 500)
     "error_status": 502,
     "outage": true,           # the clearing service is down: 503 (a submit rejects every row)
     "drop_rate": 1.0,         # share of requests whose connection is closed without a response
     "malformed_rate": 1.0,    # share of requests answered 200 with a body that is not valid JSON
     "malformed_kind": "truncated",  # or "html" (a gateway's error page), "bad_gzip" (the real
                               # answer, declared gzip but not gzip), "deep_json" (JSON nested
                               # deeper than a reader's recursion limit)
     "retry_after": "Wed, 21 Oct 2015 07:28:00 -0000",  # Retry-After on injected errors and outages
     "request_id_length": 200, # the answer's metadata.request_id is this many characters long
     "bad_value_rows": 2,      # a valid envelope whose first N data rows hold unreadable values
     "times": 2}               # the rule expires after matching this many requests

Rates are probabilities in [0, 1]; 1 means every request, which is what tests use.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from sandbox.wire import ApiError

ENDPOINTS = (
    "list_positions",
    "close_positions",
    "close_position",
    "list_instructions",
    "submit_instructions",
    "cancel_instruction",
)
ANY = "*"
MALFORMED_KINDS = ("truncated", "html", "bad_gzip", "deep_json")


@dataclass
class FaultRule:
    latency_ms: int = 0
    error_rate: float = 0.0
    error_status: int = 500
    outage: bool = False
    drop_rate: float = 0.0
    malformed_rate: float = 0.0
    malformed_kind: str = "truncated"
    retry_after: str | None = None
    request_id_length: int = 0
    bad_value_rows: int = 0
    times: int | None = None

    @classmethod
    def parse(cls, endpoint: str, raw: Any) -> FaultRule:
        if not isinstance(raw, dict):
            raise ApiError(400, f"faults.{endpoint} must be an object")
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ApiError(400, f"faults.{endpoint}: unknown field(s) {', '.join(sorted(unknown))}")
        rule = cls(**raw)
        for name in ("error_rate", "drop_rate", "malformed_rate"):
            value = getattr(rule, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ApiError(400, f"faults.{endpoint}.{name} must be a number between 0 and 1")
        if (
            isinstance(rule.latency_ms, bool)
            or not isinstance(rule.latency_ms, int)
            or not 0 <= rule.latency_ms <= 120_000
        ):
            raise ApiError(400, f"faults.{endpoint}.latency_ms must be an integer from 0 to 120000")
        if not isinstance(rule.error_status, int) or not 500 <= rule.error_status <= 599:
            raise ApiError(400, f"faults.{endpoint}.error_status must be a 5xx status")
        if not isinstance(rule.outage, bool):
            raise ApiError(400, f"faults.{endpoint}.outage must be true or false")
        if rule.malformed_kind not in MALFORMED_KINDS:
            raise ApiError(
                400, f"faults.{endpoint}.malformed_kind must be one of {', '.join(MALFORMED_KINDS)}"
            )
        if rule.retry_after is not None and (
            not isinstance(rule.retry_after, str) or len(rule.retry_after) > 200
        ):
            raise ApiError(400, f"faults.{endpoint}.retry_after must be a header value (text)")
        if (
            isinstance(rule.request_id_length, bool)
            or not isinstance(rule.request_id_length, int)
            or not 0 <= rule.request_id_length <= 100_000
        ):
            raise ApiError(400, f"faults.{endpoint}.request_id_length must be an integer from 0 to 100000")
        if (
            isinstance(rule.bad_value_rows, bool)
            or not isinstance(rule.bad_value_rows, int)
            or not (0 <= rule.bad_value_rows <= 1000)
        ):
            raise ApiError(400, f"faults.{endpoint}.bad_value_rows must be an integer from 0 to 1000")
        if rule.times is not None and (
            isinstance(rule.times, bool) or not isinstance(rule.times, int) or rule.times < 1
        ):
            raise ApiError(400, f"faults.{endpoint}.times must be a positive integer")
        return rule


@dataclass(frozen=True)
class Decision:
    """What to do to one request, drawn once when it arrives."""

    latency_ms: int = 0
    drop: bool = False
    error_status: int | None = None
    outage: bool = False
    malformed_kind: str | None = None
    retry_after: str | None = None
    request_id_length: int = 0
    bad_value_rows: int = 0


class Faults:
    def __init__(
        self, config: dict[str, Any] | None = None, on_change: Callable[[], None] | None = None
    ) -> None:
        self.lock = threading.Lock()
        self.rules: dict[str, FaultRule] = {}
        self.random = random.Random()
        if config:
            self.update(config)
        # Called after a "times" rule counts down, so the remaining count survives a restart.
        self.on_change = on_change

    def to_config(self) -> dict[str, Any]:
        with self.lock:
            return {name: asdict(rule) for name, rule in self.rules.items()}

    def update(self, body: Any) -> None:
        """Set (replace) the rules named in ``body``; a ``null`` rule removes that endpoint's rule."""
        if not isinstance(body, dict):
            raise ApiError(400, "faults must be an object keyed by endpoint name")
        parsed: dict[str, FaultRule | None] = {}
        for endpoint, raw in body.items():
            if endpoint not in ENDPOINTS and endpoint != ANY:
                raise ApiError(400, f"unknown endpoint {endpoint!r}; one of: {', '.join((*ENDPOINTS, ANY))}")
            parsed[endpoint] = None if raw is None else FaultRule.parse(endpoint, raw)
        with self.lock:
            for endpoint, rule in parsed.items():
                if rule is None:
                    self.rules.pop(endpoint, None)
                else:
                    self.rules[endpoint] = rule

    def clear(self, endpoint: str | None = None) -> None:
        with self.lock:
            if endpoint is None:
                self.rules.clear()
            else:
                self.rules.pop(endpoint, None)

    def decide(self, endpoint: str) -> Decision:
        """Draw this request's faults; the endpoint's own rule wins over the ``"*"`` rule."""
        with self.lock:
            name = endpoint if endpoint in self.rules else ANY
            rule = self.rules.get(name)
            if rule is None:
                return Decision()
            counted = rule.times is not None
            if rule.times is not None:
                rule.times -= 1
                if rule.times <= 0:
                    del self.rules[name]
            hit = self.random.random
            decision = Decision(
                latency_ms=rule.latency_ms,
                drop=rule.drop_rate > 0 and hit() < rule.drop_rate,
                error_status=rule.error_status if rule.error_rate > 0 and hit() < rule.error_rate else None,
                outage=rule.outage,
                malformed_kind=rule.malformed_kind
                if rule.malformed_rate > 0 and hit() < rule.malformed_rate
                else None,
                retry_after=rule.retry_after,
                request_id_length=rule.request_id_length,
                bad_value_rows=rule.bad_value_rows,
            )
        if counted and self.on_change is not None:
            self.on_change()
        return decision
