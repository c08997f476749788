"""Celery's side of the log context: a task's lines carry its id and name, and the request id of
the request (or task) that queued it, which travels in the message's headers."""

from __future__ import annotations

import logging
from typing import Any

import structlog
from celery import signals

from backoffice.telemetry import logs

# The message header that carries the originating request id to the worker.
REQUEST_ID_HEADER = "backoffice_request_id"


def _stamp_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = logs.current_request_id()
    if request_id and headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


def _bind_task(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    structlog.contextvars.clear_contextvars()
    context: dict[str, Any] = {"task_id": task_id, "task_name": getattr(task, "name", None)}
    request_id = getattr(getattr(task, "request", None), REQUEST_ID_HEADER, None)
    if isinstance(request_id, str):
        context["request_id"] = logs.request_id_from(request_id)
    structlog.contextvars.bind_contextvars(**context)


def _unbind_task(**_: Any) -> None:
    structlog.contextvars.clear_contextvars()


def _configure_logging(loglevel: Any = None, **_: Any) -> None:
    """Celery (worker and beat) logs through the project's ``LOGGING`` instead of its own setup; a
    ``-l`` level on the command line more verbose than ``LOG_LEVEL`` wins."""
    from django.conf import settings

    config = dict(settings.LOGGING)
    root = dict(config.get("root", {}))
    configured = logging.getLevelName(str(root.get("level", "INFO")).upper())
    asked = logging.getLevelName(str(loglevel).upper()) if isinstance(loglevel, str) else loglevel
    if isinstance(configured, int) and isinstance(asked, int) and asked < configured:
        root["level"] = asked
    config["root"] = root
    logs.configure(config)


def connect() -> None:
    signals.before_task_publish.connect(_stamp_request_id, weak=False, dispatch_uid="telemetry.stamp")
    signals.task_prerun.connect(_bind_task, weak=False, dispatch_uid="telemetry.bind")
    signals.task_postrun.connect(_unbind_task, weak=False, dispatch_uid="telemetry.unbind")
    signals.setup_logging.connect(_configure_logging, weak=False, dispatch_uid="telemetry.logging")
