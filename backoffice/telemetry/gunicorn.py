"""gunicorn's side of telemetry, as a config module: ``gunicorn -c python:backoffice.telemetry.gunicorn``
(other settings may follow on the command line or in another config).

- gunicorn's own lines (boot, worker exits, timeouts) go through the project's formatter, so they
  are JSON like everything else;
- ``PROMETHEUS_MULTIPROC_DIR`` is emptied as the server starts (files of a previous run would add
  its requests to this one's), and a worker's live files are marked dead when it exits.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings")


def _logconfig() -> dict[str, Any]:
    from django.conf import settings

    config = dict(settings.LOGGING)
    loggers = dict(config.get("loggers", {}))
    for name in ("gunicorn.error", "gunicorn.access"):
        loggers[name] = {"handlers": ["console"], "level": "INFO", "propagate": False}
    config["loggers"] = loggers
    return config


logconfig_dict = _logconfig()


def on_starting(server: Any) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        for stale in Path(directory).glob("*.db"):
            stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
