"""Typed failures of calls to Clear Street.

``UpstreamHTTPError`` and its subclasses: Clear Street answered with a non-2xx status; they carry
the status, ``request_id``, message, details and any rows it sent back. ``UpstreamTransportError``
and its subclasses: no answer at all (timeout, refused or dropped connection); the request may or
may not have reached Clear Street, so a write is resolved by reading, never by a blind resubmit.
``MalformedResponse``: an answer that is not the documented envelope; the raw text is kept.
"""

from __future__ import annotations

from typing import Any


class ClearStreetError(Exception):
    """Base of every failure the client raises."""

    status_code: int | None = None
    request_id: str | None = None
    retryable: bool = False
    retry_after: float | None = None  # seconds, from a Retry-After header

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UpstreamHTTPError(ClearStreetError):
    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        request_id: str | None = None,
        details: Any = None,
        rows: list[Any] | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.request_id = request_id
        self.details = details
        self.rows = rows or []
        self.body = body

    def __str__(self) -> str:
        rid = f", request_id {self.request_id}" if self.request_id else ""
        return f"Clear Street answered {self.status_code}: {self.message}{rid}"


class BadRequest(UpstreamHTTPError):
    pass


class Unauthorized(UpstreamHTTPError):
    pass


class Forbidden(UpstreamHTTPError):
    pass


class NotFound(UpstreamHTTPError):
    pass


class Conflict(UpstreamHTTPError):
    pass


class RateLimited(UpstreamHTTPError):
    retryable = True


class ServerError(UpstreamHTTPError):
    retryable = True


class ServiceUnavailable(ServerError):
    pass


class UpstreamTransportError(ClearStreetError):
    """No HTTP answer arrived."""

    retryable = True


class UpstreamTimeout(UpstreamTransportError):
    pass


class UpstreamConnectionError(UpstreamTransportError):
    pass


class MalformedResponse(ClearStreetError):
    """The answer was not the documented JSON envelope."""

    def __init__(
        self, message: str, *, status_code: int | None, raw_text: str, request_id: str | None = None
    ):
        super().__init__(message)
        self.status_code = status_code
        self.raw_text = raw_text
        self.request_id = request_id


_BY_STATUS: dict[int, type[UpstreamHTTPError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
    503: ServiceUnavailable,
}


def http_error_class(status_code: int) -> type[UpstreamHTTPError]:
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    return ServerError if status_code >= 500 else UpstreamHTTPError
