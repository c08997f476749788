"""The one place that speaks HTTP to Clear Street.

One method per endpoint of the positions API. Every HTTP attempt, answered or not, leaves exactly
one audit row (``backoffice.audit``), written in its own transaction. Reads retry on 5xx, 429 and
network failures with backoff (honouring ``Retry-After``); writes never retry here: a write whose
answer was lost is resolved by the caller reading the instruction list, never by sending it again.
"""

from __future__ import annotations

import email.utils
import functools
import json
import math
import random
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from django.conf import settings

from backoffice import failpoints
from backoffice.audit.models import PendingCall
from backoffice.audit.services import CallRequest, begin_call, record_upstream_call
from backoffice.clearstreet.errors import (
    ClearStreetError,
    MalformedResponse,
    UpstreamConnectionError,
    UpstreamHTTPError,
    UpstreamTimeout,
    UpstreamTransportError,
    http_error_class,
)
from backoffice.clearstreet.types import (
    InstructionList,
    InstructionRequest,
    Order,
    OrderList,
    PositionInstruction,
    PositionsPage,
    RowProblem,
    SubmitResult,
    WireValueError,
    read_rows,
)
from backoffice.clearstreet.types import Position as WirePosition

T = TypeVar("T")

SORT_FIELDS = frozenset(
    {
        "SYMBOL",
        "INSTRUMENT_TYPE",
        "QUANTITY",
        "MARKET_VALUE",
        "POSITION_TYPE",
        "UNREALIZED_PNL",
        "DAILY_UNREALIZED_PNL",
    }
)
USER_AGENT = "clearstreet-backoffice/0.1"
# Answers longer than this (characters) are audited as their raw text rather than as parsed JSON.
AUDIT_PARSED_BODY_LIMIT = 64 * 1024
REDACTED_AUTHORIZATION = "Bearer [REDACTED]"


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: dict[str, Any]
    request_id: str | None


def _retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds to wait, from ``Retry-After`` (seconds, or an HTTP date; a date without a usable
    zone, such as ``-0000``, is UTC); None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _envelope_error(body: dict[str, Any]) -> tuple[str, Any]:
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or "no message"), error.get("details")
    if isinstance(error, str):
        return error, None
    return "no error message in the response", None


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The trusted certificates, read once per process rather than for every client (each read
    costs tens of milliseconds, on every batch a worker sends); as httpx would build them."""
    return httpx.create_ssl_context()


class ClearStreetClient:
    """A client bound to one base URL and API key; reuse it for a run of calls (it pools connections)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | None = None,
        read_attempts: int = 3,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = (base_url or settings.CLEAR_STREET_BASE_URL).rstrip("/")
        self._api_key = api_key if api_key is not None else settings.CLEAR_STREET_API_KEY
        self.read_attempts = max(1, read_attempts)
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            verify=tls_context(),
            timeout=httpx.Timeout(timeout if timeout is not None else settings.CLEAR_STREET_TIMEOUT_SECONDS),
            headers={
                "Authorization": f"Bearer {self._api_key}",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ClearStreetClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the six endpoints ----------------------------------------------------------------------

    def get_positions(
        self,
        account_id: int,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        sort_by: str | None = None,
        sort_direction: str | None = None,
        instrument_ids: Sequence[str] | None = None,
    ) -> PositionsPage:
        params: dict[str, Any] = {}
        if page_token:
            params["page_token"] = page_token  # page_size is ignored upstream when a token is given
        elif page_size is not None:
            params["page_size"] = page_size
        if sort_by:
            params["sort_by"] = sort_by
        if sort_direction:
            params["sort_direction"] = sort_direction
        if instrument_ids:
            params["instrument_ids"] = ",".join(instrument_ids)
        answer = self._send(
            "GET", f"/v1/accounts/{account_id}/positions", params=params, account_id=account_id
        )
        positions, problems = self._rows(answer, WirePosition.from_wire)
        raw_metadata = answer.body.get("metadata")
        metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
        return PositionsPage(
            positions=positions,
            problems=problems,
            request_id=answer.request_id,
            page_number=metadata.get("page_number"),
            total_items=metadata.get("total_items"),
            total_pages=metadata.get("total_pages"),
            next_page_token=metadata.get("next_page_token") or None,
            previous_page_token=metadata.get("previous_page_token") or None,
        )

    def iter_position_pages(
        self, account_id: int, *, page_size: int = 1000, max_pages: int = 100_000, **query: Any
    ) -> Iterator[PositionsPage]:
        """Every page of the account's book, following ``next_page_token`` (filters resent each time)."""
        page = self.get_positions(account_id, page_size=page_size, **query)
        yield page
        seen = 1
        while page.next_page_token:
            if seen >= max_pages:
                raise MalformedResponse(
                    f"pagination did not end after {max_pages} pages", status_code=200, raw_text=""
                )
            page = self.get_positions(account_id, page_token=page.next_page_token, **query)
            seen += 1
            yield page

    def close_positions(self, account_id: int, *, cancel_orders: bool | None = None) -> OrderList:
        body = None if cancel_orders is None else {"cancel_orders": cancel_orders}
        answer = self._send(
            "DELETE", f"/v1/accounts/{account_id}/positions", json_body=body, account_id=account_id
        )
        orders, problems = self._rows(answer, Order.from_wire)
        return OrderList(orders=orders, problems=problems, request_id=answer.request_id)

    def close_position(
        self, account_id: int, instrument_id: str, *, cancel_orders: bool | None = None
    ) -> OrderList:
        body = None if cancel_orders is None else {"cancel_orders": cancel_orders}
        # An OSI symbol may hold spaces ("AAPL  280121C00195000"): it is one path segment.
        path = f"/v1/accounts/{account_id}/positions/{quote(instrument_id, safe='')}"
        answer = self._send("DELETE", path, json_body=body, account_id=account_id)
        orders, problems = self._rows(answer, Order.from_wire)
        return OrderList(orders=orders, problems=problems, request_id=answer.request_id)

    def list_instructions(self, account_id: int, *, instrument_id: str | None = None) -> InstructionList:
        params = {"instrument_id": instrument_id} if instrument_id else {}
        answer = self._send(
            "GET", f"/v1/accounts/{account_id}/positions/instructions", params=params, account_id=account_id
        )
        rows, problems = self._rows(answer, PositionInstruction.from_wire)
        return InstructionList(instructions=rows, problems=problems, request_id=answer.request_id)

    def submit_instructions(
        self, account_id: int, instructions: Sequence[InstructionRequest]
    ) -> SubmitResult:
        """200: every row SENT. 207: each row its own outcome (a result, not an error).

        Any other status raises; a 409/400/503 carries the rows Clear Street sent back, if any.
        """
        body = [row.to_wire() for row in instructions]
        answer = self._send(
            "POST", f"/v1/accounts/{account_id}/positions/instructions", json_body=body, account_id=account_id
        )
        rows, problems = self._rows(answer, PositionInstruction.from_wire)
        message, details = _envelope_error(answer.body) if answer.body.get("error") else (None, None)
        return SubmitResult(
            status_code=answer.status_code,
            rows=rows,
            problems=problems,
            request_id=answer.request_id,
            error_message=message,
            error_details=details if isinstance(details, list) else [],
        )

    def cancel_instruction(self, account_id: int, instruction_server_id: str) -> PositionInstruction:
        path = f"/v1/accounts/{account_id}/positions/instructions/{instruction_server_id}"
        answer = self._send("DELETE", path, account_id=account_id)
        try:
            return PositionInstruction.from_wire(answer.body.get("data"))
        except WireValueError as exc:
            raise MalformedResponse(
                f"cancel answer has no readable instruction: {exc}",
                status_code=answer.status_code,
                raw_text=json.dumps(answer.body),
                request_id=answer.request_id,
            ) from None

    # --- transport, audit, retries -------------------------------------------------------------

    def _rows(self, answer: Answer, parse: Callable[[Any], T]) -> tuple[list[T], list[RowProblem]]:
        try:
            return read_rows(answer.body.get("data"), parse)
        except WireValueError as exc:
            raise MalformedResponse(
                f"response data is not a list: {exc}",
                status_code=answer.status_code,
                raw_text=json.dumps(answer.body)[:10_000],
                request_id=answer.request_id,
            ) from None

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        account_id: int | None = None,
    ) -> Answer:
        is_read = method == "GET"
        attempts = self.read_attempts if is_read else 1
        for attempt in range(1, attempts + 1):
            try:
                return self._attempt(method, path, params, json_body, account_id, attempt)
            except ClearStreetError as exc:
                wait = exc.retry_after
                if not (is_read and exc.retryable and attempt < attempts):
                    raise
                backoff = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
                self._sleep(
                    min(self.max_backoff_seconds, wait)
                    if wait is not None
                    else backoff * random.uniform(0.5, 1)
                )
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        json_body: Any,
        account_id: int | None,
        attempt: int,
    ) -> Answer:
        """One HTTP attempt, on the record whatever happens: exactly one audit row, written after the
        answer (or the failure, of any kind) and before anything acts on it. A write is on the record
        as pending before it leaves, so a process that dies mid-call leaves a trace."""
        headers = {
            "Authorization": REDACTED_AUTHORIZATION,
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        content = None
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":"))
            headers["Content-Type"] = "application/json"
        call = CallRequest(method, path, params or None, headers, json_body, attempt, account_id)
        pending = begin_call(call) if method != "GET" else None
        failpoints.reach("call.before_send")
        started = time.perf_counter()
        outcome = _Outcome()
        try:
            response = self._http.request(
                method,
                path,
                params=params or None,
                content=content,
                headers={"Content-Type": "application/json"} if content is not None else None,
            )
            failpoints.reach("call.after_send")
            outcome.response = response
            answer = self._interpret(response, outcome)
        except BaseException as exc:
            error = outcome.error or _client_error(exc)
            self._record(call, pending, started, outcome, error if error is not None else exc)
            if error is None or error is exc:
                raise  # not the answer's fault (an interrupt, a bug of ours): as it is, once recorded
            raise error from None
        self._record(call, pending, started, outcome, None)
        failpoints.reach("call.after_record")
        return answer

    @staticmethod
    def _interpret(response: httpx.Response, outcome: _Outcome) -> Answer:
        """Read the answer into ``outcome`` as far as it goes; raise the error it amounts to."""
        text = outcome.text = response.text  # a body that cannot be decoded raises httpx.DecodingError
        try:
            body = json.loads(text) if text else None
        except (ValueError, RecursionError):  # not JSON, or nested too deep to read
            body = None
        outcome.body = body
        request_id = None
        if isinstance(body, dict) and isinstance(body.get("metadata"), dict):
            request_id = body["metadata"].get("request_id")
        request_id = request_id or response.headers.get("x-request-id")
        outcome.request_id = str(request_id) if request_id is not None else None
        if not isinstance(body, dict):
            error = MalformedResponse(
                f"HTTP {response.status_code} with a body that is not a JSON object",
                status_code=response.status_code,
                raw_text=text,
                request_id=outcome.request_id,
            )
            # A 5xx whose body is garbage is still a 5xx: reads may retry it.
            error.retryable = response.status_code >= 500
            outcome.error = error
            raise error
        if response.is_success:
            return Answer(response.status_code, body, outcome.request_id)
        message, details = _envelope_error(body)
        rows = body.get("data") if isinstance(body.get("data"), list) else []
        parsed_rows, _ = read_rows(rows, PositionInstruction.from_wire) if rows else ([], [])
        http_error = http_error_class(response.status_code)(
            response.status_code,
            message,
            request_id=outcome.request_id,
            details=details,
            rows=parsed_rows,
            body=body,
        )
        http_error.retry_after = _retry_after_seconds(response)
        outcome.error = http_error
        raise http_error

    def _record(
        self,
        call: CallRequest,
        pending: PendingCall | None,
        started: float,
        outcome: _Outcome,
        error: BaseException | None,
    ) -> None:
        body, text = outcome.body, outcome.text
        # A large answer (a page of a big book) is kept as the exact text received: the same record,
        # without rebuilding and re-hashing a tree of thousands of rows on every page of a sync.
        keep_text = body is None or (text is not None and len(text) > AUDIT_PARSED_BODY_LIMIT)
        if isinstance(error, UpstreamTransportError | MalformedResponse):
            message: str | None = error.message
        elif error is not None:
            message = str(error) or repr(error)
        else:
            message = None
        record_upstream_call(
            call,
            status_code=outcome.response.status_code if outcome.response is not None else None,
            response_body=None if keep_text else body,
            response_text=text if keep_text else None,
            request_id=outcome.request_id,
            duration_ms=(time.perf_counter() - started) * 1000,
            error_class=error.__class__.__name__ if error is not None else None,
            error_message=message,
            pending=pending,
        )


@dataclass
class _Outcome:
    """What is known of an attempt so far: filled in as the answer is read."""

    response: httpx.Response | None = None
    text: str | None = None
    body: Any = None
    request_id: str | None = None
    error: ClearStreetError | None = None


def _client_error(exc: BaseException) -> ClearStreetError | None:
    """The client's name for a failure of the exchange itself; None for anything else (recorded as
    what it is and raised unchanged)."""
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"no answer within the timeout ({exc.__class__.__name__})")
    if isinstance(exc, httpx.DecodingError):
        # Clear Street answered, but its body cannot be decoded (a broken gzip stream, say).
        return MalformedResponse(
            f"the answer's body could not be decoded ({exc})", status_code=None, raw_text=""
        )
    if isinstance(exc, httpx.TransportError):
        return UpstreamConnectionError(f"connection failed: {exc.__class__.__name__}: {exc}")
    if isinstance(exc, httpx.HTTPError):
        return UpstreamConnectionError(f"the exchange failed: {exc.__class__.__name__}: {exc}")
    return None


__all__ = ["ClearStreetClient", "ClearStreetError", "UpstreamHTTPError", "UpstreamTransportError"]
