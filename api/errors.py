"""One JSON shape for every error the API gives, whatever raised it.

    {"error": {"code": "invalid", "status": 400, "message": "Row 2: ...",
               "fields": [{"row": 1, "field": "quantity", "message": "..."}]}}

``code`` is a stable machine code; ``message`` is a sentence a person can act on; ``fields`` (empty
when the error is not about the input) names each bad field, and for batch rows the 0-based row.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from backoffice.workflow import ActionRefused
from instructions.services import BatchInvalid

logger = logging.getLogger(__name__)

# What each service refusal means over HTTP.
REFUSAL_STATUS: dict[str, int] = {
    "forbidden": 403,
    "self_approval": 403,
    "not_found": 404,
    "invalid_transition": 409,
    "stale_version": 409,
    "position_changed": 409,
    "duplicate": 409,
    "past_cutoff": 409,
    "invalid": 400,
    "reason_required": 400,
    "refused": 400,
}
# The input field a refusal is about, where it is about one.
REFUSAL_FIELD: dict[str, str] = {"reason_required": "reason", "stale_version": "version"}

DRF_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ParseError: "malformed_request",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
    exceptions.ValidationError: "invalid",
}


def error_body(
    code: str, http_status: int, message: str, fields: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {"error": {"code": code, "status": http_status, "message": message, "fields": fields or []}}


def json_error(code: str, http_status: int, message: str) -> JsonResponse:
    """For plain Django views under /api/ (no DRF request around them)."""
    return JsonResponse(error_body(code, http_status, message), status=http_status)


def flatten(detail: Any, path: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    """DRF's nested error detail as a flat list: the field's dotted name, the row where there is one."""
    if isinstance(detail, dict):
        found: list[dict[str, Any]] = []
        for key, value in detail.items():
            found.extend(flatten(value, (*path, key)))
        return found
    if isinstance(detail, list):
        if detail and all(isinstance(item, str) for item in detail):
            return [_field_error(path, str(item)) for item in detail]
        found = []
        for index, item in enumerate(detail):
            found.extend(flatten(item, (*path, index)))
        return found
    return [_field_error(path, str(detail))]


def _field_error(path: tuple[str | int, ...], message: str) -> dict[str, Any]:
    row = next((part for part in path if isinstance(part, int)), None)
    names = [str(part) for part in path if not isinstance(part, int)]
    if names and names[0] == "rows" and row is not None:
        names = names[1:] or ["rows"]  # rows[2].quantity -> row 2, field "quantity"
    field = ".".join(names) or "non_field_errors"
    entry: dict[str, Any] = {"field": field, "message": message}
    if row is not None:
        entry["row"] = row
    return entry


def _validation_message(fields: list[dict[str, Any]]) -> str:
    if not fields:
        return "The request is not valid."
    first = fields[0]
    more = f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""
    name = first["field"]
    where = "" if name == "non_field_errors" else f"field {name}: "
    where = f"Row {first['row'] + 1}, {where}" if "row" in first else where.capitalize()
    return f"{where}{first['message']}{more}"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    set_rollback()  # whatever the view wrote before the error is not kept
    headers: dict[str, str] = {}
    if isinstance(exc, BatchInvalid):
        fields = [{"row": e.row, "field": e.field, "message": e.message} for e in exc.errors]
        return Response(error_body("invalid", 400, exc.message, fields), status=400)
    if isinstance(exc, ActionRefused):
        http_status = REFUSAL_STATUS.get(exc.code, 400)
        field = REFUSAL_FIELD.get(exc.code)
        fields = [{"field": field, "message": exc.message}] if field else []
        return Response(error_body(exc.code, http_status, exc.message, fields), status=http_status)
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        return Response(error_body("not_found", 404, "Nothing exists at this address."), status=404)
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, RequestDataTooBig | TooManyFieldsSent):
        return Response(
            error_body("too_large", 413, "The request body is too large; send fewer rows per request."),
            status=413,
        )
    if isinstance(exc, exceptions.APIException):
        code = next((c for cls, c in DRF_CODES.items() if isinstance(exc, cls)), "error")
        if isinstance(exc, exceptions.ValidationError):
            fields = flatten(exc.detail)
            message = _validation_message(fields)
        else:
            fields = []
            message = _plain_message(exc)
        if auth_header := getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = str(auth_header)
        if (wait := getattr(exc, "wait", None)) is not None:
            headers["Retry-After"] = str(int(wait))
        return Response(
            error_body(code, exc.status_code, message, fields), status=exc.status_code, headers=headers
        )
    logger.exception("unexpected error in %s", context.get("view").__class__.__name__)
    return Response(
        error_body("server_error", 500, "Something went wrong on our side; it has been logged."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def _plain_message(exc: exceptions.APIException) -> str:
    detail = exc.detail
    if isinstance(detail, list | dict):
        return "; ".join(f["message"] for f in flatten(detail)) or str(exc.default_detail)
    text = str(detail)
    if isinstance(exc, exceptions.NotAuthenticated):
        return "Sign in, or send 'Authorization: Bearer <token>' with an API token."
    if isinstance(exc, exceptions.PermissionDenied) and text == str(
        exceptions.PermissionDenied.default_detail
    ):
        return "Your role does not allow this."
    if isinstance(exc, exceptions.Throttled):
        # A throttle that says why (too many wrong tokens) keeps its words; the wait is always given.
        why = text.split(" Expected available", 1)[0].rstrip(".")
        why = "Too many requests" if why == "Request was throttled" else why
        return f"{why}; try again in {int(getattr(exc, 'wait', None) or 1)} seconds."
    return text
