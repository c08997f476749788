"""One middleware, outermost: the request's id (reused from ``X-Request-ID`` or made here, and sent
back), the context every log line of the request carries, one log line per request, and the
latency histogram by view and status."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from backoffice.telemetry import logs, metrics

logger = logs.get_logger("backoffice.requests")


def view_name(request: HttpRequest) -> str:
    """The route's name ("positions:list"), never the raw path, so the label's values stay few."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "<unresolved>"
    return match.view_name or "<unnamed>"


class RequestTelemetryMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = logs.request_id_from(request.headers.get(logs.REQUEST_ID_HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        logs.bind_request(request, request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            seconds = time.perf_counter() - started
            view = view_name(request)
            metrics.observe_request(view, request.method or "", response.status_code, seconds)
            response[logs.REQUEST_ID_HEADER] = request_id
            logger.info(
                "request",
                method=request.method,
                path=request.path,
                view=view,
                status=response.status_code,
                duration_ms=round(seconds * 1000, 1),
            )
            return response
        finally:
            logs.unbind_request()
