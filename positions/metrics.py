"""The book's freshness for Prometheus, read from the database at each scrape."""

from __future__ import annotations

import math
from collections.abc import Iterable

from django.conf import settings
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from backoffice.telemetry.metrics import PREFIX, register
from positions import queries


def sync_freshness() -> Iterable[Metric]:
    now = timezone.now()
    age = GaugeMetricFamily(
        f"{PREFIX}_positions_last_good_sync_age_seconds",
        "Seconds since the account's last successful sync finished (+Inf: never synced), active accounts.",
        labels=["account"],
    )
    failed = GaugeMetricFamily(
        f"{PREFIX}_positions_last_sync_failed",
        "1 when the account's latest finished sync failed (the book shown is the previous snapshot).",
        labels=["account"],
    )
    for health in queries.sync_health():
        account = str(health.number)
        seconds = (now - health.last_good_at).total_seconds() if health.last_good_at else math.inf
        age.add_metric([account], max(0.0, seconds))
        failed.add_metric([account], 1 if health.last_failed else 0)
    stale_after = GaugeMetricFamily(
        f"{PREFIX}_positions_stale_after_seconds",
        "Age past which the pages call a book stale (POSITIONS_STALE_AFTER_SECONDS).",
    )
    stale_after.add_metric([], settings.POSITIONS_STALE_AFTER_SECONDS)
    return [age, failed, stale_after]


register("positions", sync_freshness)
