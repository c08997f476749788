"""Batches waiting and batches that failed, for Prometheus, read from the database at each scrape."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from backoffice import clock
from backoffice.telemetry.metrics import PREFIX, register
from instructions import queries
from instructions.models import Batch


def batches() -> Iterable[Metric]:
    now = clock.now()
    count = GaugeMetricFamily(
        f"{PREFIX}_batches_waiting",
        "Batches of today or later awaiting approval (pending_approval) or their worker (approved).",
        labels=["account", "status"],
    )
    minutes = GaugeMetricFamily(
        f"{PREFIX}_batches_waiting_cutoff_minutes",
        "Minutes from now to the earliest cutoff among those batches (negative: it has passed).",
        labels=["account", "status"],
    )
    earliest: dict[tuple[str, str], datetime] = {}
    counts: dict[tuple[str, str], int] = {}
    for waiting in queries.waiting_batches():
        key = (str(waiting.account_number), waiting.status)
        counts[key] = counts.get(key, 0) + 1
        earliest[key] = min(earliest.get(key, waiting.cutoff), waiting.cutoff)
    for key in sorted(counts):
        count.add_metric(list(key), counts[key])
        minutes.add_metric(list(key), round((earliest[key] - now).total_seconds() / 60, 2))
    attention = GaugeMetricFamily(
        f"{PREFIX}_batches_needing_attention",
        "Batches that did not reach their goal (failed, rejected upstream, partially rejected, expired) "
        "and that nobody acknowledged yet.",
        labels=["status"],
    )
    found = queries.batches_needing_attention_by_status()
    for status in sorted(Batch.NEEDS_ATTENTION):
        attention.add_metric([str(status)], found.get(status, 0))
    return [count, minutes, attention]


register("instructions", batches)
