"""Prometheus metrics, served at ``/metrics`` (see ``views``).

Two kinds:

- **Measured in the web process**: HTTP latency by view, method and status. Several gunicorn
  workers each hold their own; with ``PROMETHEUS_MULTIPROC_DIR`` set (an empty directory every web
  worker can write, emptied when the server starts) prometheus_client keeps them in files there and
  a scrape of any worker sums them all.
- **Read at scrape time** from the database and the broker by collectors: the queues' depth, the
  upstream calls (counted from the audit, which holds one row per call whichever process made it),
  the last chain verification, and what each app registers from its own ``metrics.py``
  (``register``; found like admin modules, by ``autodiscover``). So they are right whichever
  process answers the scrape, and the Celery processes need not be scraped at all.

A source that cannot be read (the broker down, say) drops its families from that scrape and sets
``backoffice_metrics_source_up{source=...}`` to 0; the scrape itself still answers.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from backoffice import queues

logger = logging.getLogger(__name__)

PREFIX = "backoffice"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Pages answer in tens of milliseconds; an audit export streams for minutes.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
HTTP_LATENCY = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "Time to answer an HTTP request (to the first byte of a streamed answer), by route name and status.",
    ["view", "method", "status"],
    buckets=LATENCY_BUCKETS,
    registry=None,
)


def observe_request(view: str, method: str, status: int, seconds: float) -> None:
    HTTP_LATENCY.labels(view=view, method=method, status=str(status)).observe(seconds)


Source = Callable[[], Iterable[Metric]]
_sources: dict[str, Source] = {}
_discovered = False


def register(name: str, source: Source) -> None:
    """Add a source of families read at scrape time (an app's ``metrics.py`` calls this on import)."""
    _sources[name] = source


def autodiscover() -> None:
    global _discovered
    if not _discovered:
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("metrics")
        _discovered = True


class _ScrapeTimeCollector:
    """Every registered source, each on its own: one that fails is reported down, the rest answer."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            f"{PREFIX}_metrics_source_up",
            "Whether a source of metrics could be read this scrape.",
            labels=["source"],
        )
        for name, source in sorted(_sources.items()):
            try:
                families = list(source())
            except Exception:  # a source down is a reported gauge, never a failed scrape
                logger.exception("metrics source %s could not be read", name)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up


_scrape_collector = _ScrapeTimeCollector()


def render() -> tuple[bytes, str]:
    """The exposition text of one scrape, and its content type."""
    autodiscover()
    registry = CollectorRegistry()
    multiproc_dir = os.environ.get(MULTIPROC_ENV)
    http: Collector = HTTP_LATENCY
    if multiproc_dir:
        http = MultiProcessCollector(None, path=multiproc_dir)  # type: ignore[no-untyped-call]
    registry.register(http)
    registry.register(_scrape_collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST


# --- the kernel's own sources ------------------------------------------------------------------


def project_queues() -> list[str]:
    """Every queue the project sends to: the default one, and any declared or routed to."""
    from backoffice.celery import app

    conf = app.conf
    names = set(queues.all_queues(conf.task_default_queue))
    for queue in conf.task_queues or ():
        names.add(queue.name)
    return sorted(names)


_redis_lock = threading.Lock()
_redis_client: Any = None


def _redis() -> Any:
    global _redis_client
    import redis
    from django.conf import settings

    with _redis_lock:
        if _redis_client is None:
            _redis_client = redis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
            )
        return _redis_client


def queue_depths() -> Iterable[Metric]:
    """Messages waiting in each queue: the list kombu keeps in Redis under the queue's name, plus its
    priority lists (kombu's ``name\\x06\\x16<n>``), read in one round trip."""
    from backoffice.celery import app

    queues = project_queues()
    separator = "\x06\x16"
    steps = app.conf.broker_transport_options.get("priority_steps", [0, 3, 6, 9])
    keys = {queue: [queue, *(f"{queue}{separator}{step}" for step in steps if step)] for queue in queues}
    pipe = _redis().pipeline(transaction=False)
    for queue in queues:
        for key in keys[queue]:
            pipe.llen(key)
    lengths = iter(pipe.execute())
    family = GaugeMetricFamily(
        f"{PREFIX}_celery_queue_length",
        "Tasks waiting in a Celery queue (not yet taken by a worker).",
        labels=["queue"],
    )
    for queue in queues:
        family.add_metric([queue], sum(next(lengths) for _ in keys[queue]))
    return [family]


class _CallCounts:
    """Upstream calls counted from the audit, incrementally: rows are appended under one lock and
    their ids taken under it, so every row up to the highest id seen has committed, and each scrape
    only reads the rows added since. Counters then only ever rise (the audit is append-only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_id = 0
        self._counts: dict[tuple[str, str, str, str], int] = {}

    def read(self) -> dict[tuple[str, str, str, str], int]:
        from django.db.models import Count, Max

        from backoffice.audit.models import AuditEntry

        with self._lock:
            rows = (
                AuditEntry.objects.filter(kind=AuditEntry.Kind.CALL, id__gt=self._last_id)
                .order_by()
                .values("endpoint", "method", "status_code", "error_class")
                .annotate(n=Count("id"), last=Max("id"))
            )
            for row in rows:
                key = (
                    row["endpoint"] or "",
                    row["method"] or "",
                    str(row["status_code"]) if row["status_code"] is not None else "none",
                    row["error_class"] or "",
                )
                self._counts[key] = self._counts.get(key, 0) + row["n"]
                self._last_id = max(self._last_id, row["last"])
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._last_id = 0
            self._counts = {}


call_counts = _CallCounts()


def upstream_calls() -> Iterable[Metric]:
    family = CounterMetricFamily(
        f"{PREFIX}_upstream_calls",
        "Calls to Clear Street by endpoint template, method, HTTP status ('none' when no answer came) and "
        "error class, as recorded in the audit. Submit attempts are the POSTs to the instructions endpoint.",
        labels=["endpoint", "method", "status", "error"],
    )
    for (endpoint, method, status, error), count in sorted(call_counts.read().items()):
        family.add_metric([endpoint, method, status, error], count)
    return [family]


def chain_verification() -> Iterable[Metric]:
    from backoffice.audit.models import ChainVerification

    last = ChainVerification.objects.filter(finished_at__isnull=False).order_by("-finished_at", "-id").first()
    when = GaugeMetricFamily(
        f"{PREFIX}_audit_chain_last_verification_timestamp_seconds",
        "When the last finished verification of the audit's hash chain ended (0: never).",
    )
    when.add_metric([], last.finished_at.timestamp() if last and last.finished_at else 0)
    ok = GaugeMetricFamily(
        f"{PREFIX}_audit_chain_last_verification_ok",
        "1 if the last finished verification found the chain intact, 0 if broken (absent: never verified).",
    )
    rows = GaugeMetricFamily(
        f"{PREFIX}_audit_chain_last_verification_rows", "Rows the last finished verification checked."
    )
    if last is not None:
        ok.add_metric([], 1 if last.ok else 0)
        rows.add_metric([], last.rows_checked)
    return [when, ok, rows]


def jobs_waiting() -> Iterable[Metric]:
    from backoffice.models import Job

    family = GaugeMetricFamily(
        f"{PREFIX}_jobs_waiting",
        "Committed work the task queue has not taken yet (the broker was unreachable when it was decided).",
    )
    family.add_metric([], Job.objects.filter(dispatched_at__isnull=True).count())
    return [family]


register("broker", queue_depths)
register("audit_calls", upstream_calls)
register("audit_chain", chain_verification)
register("jobs", jobs_waiting)
