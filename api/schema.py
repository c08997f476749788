"""Schema generation: every operation documents the one error shape, for each status it can give."""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "status", "message", "fields"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Machine code: invalid, not_authenticated, authentication_failed, "
                    "forbidden, self_approval, not_found, invalid_transition, stale_version, "
                    "position_changed, duplicate, past_cutoff, reason_required, refused, throttled, "
                    "too_large, ...",
                },
                "status": {"type": "integer", "description": "The HTTP status, repeated"},
                "message": {"type": "string", "description": "A sentence a person can act on"},
                "fields": {
                    "type": "array",
                    "description": "Each bad input field; `row` is the 0-based batch row where there is one",
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "properties": {
                            "row": {"type": "integer"},
                            "field": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}

ERRORS: dict[str, str] = {
    "400": "The input is not valid (see `fields`), or the service refused it",
    "401": "Not signed in, or the token is not valid, expired or revoked",
    "403": "Your role does not allow this, or the four-eyes rule forbids it",
    "404": "No such object",
    "405": "Method not allowed",
    "406": "Not acceptable",
    "409": "The object's state does not allow this now",
    "413": "The request body is too large",
    "415": "Unsupported media type",
    "429": "Too many requests",
}
READ_ERRORS = ("400", "401", "403", "404", "405", "406", "429")
WRITE_ERRORS = (*READ_ERRORS, "409", "413", "415")


def add_error_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            codes = READ_ERRORS if method in {"get", "head"} else WRITE_ERRORS
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses.setdefault(
                    code, {"description": ERRORS[code], "content": {"application/json": {"schema": ref}}}
                )
    return result
