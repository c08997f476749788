"""The dashboard's pictures: how old each account's book is against the staleness threshold, and
today's batches by status. Figures from each app's queries; drawn by ``backoffice.charts``."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from backoffice import clock, roles
from backoffice.charts import BarChart, Category, Marker, Series
from backoffice.roles import AnyUser
from instructions.models import Batch
from instructions.queries.charts import batches_by_status
from positions import queries as position_queries

ACCOUNTS_SHOWN = 15  # the oldest books; the rest are said in words


def charts(user: AnyUser) -> list[BarChart]:
    if not user.has_perm(roles.VIEW_BOOK):
        return []
    return [freshness_chart(user), submissions_chart(user)]


def freshness_chart(user: AnyUser) -> BarChart:
    now = timezone.now()
    threshold = Decimal(settings.POSITIONS_STALE_AFTER_SECONDS) / 60
    rows = []
    for health in position_queries.sync_health(user):
        age = (
            (Decimal((now - health.last_good_at).total_seconds()) / 60).quantize(Decimal("0.1"))
            if health.last_good_at is not None
            else None
        )
        note = "never synced" if age is None else ("stale" if age > threshold else "")
        if health.last_failed:
            note = f"{note}, last sync failed" if note else "last sync failed"
        rows.append((age, health.number, note))
    # Oldest first; an account never synced is the oldest of all.
    rows.sort(key=lambda row: (row[0] is not None, -(row[0] or 0), row[1]))
    hidden = len(rows) - ACCOUNTS_SHOWN
    return BarChart(
        key="dash-freshness",
        title="Book freshness by account",
        description=(
            f"Minutes since each account's last successful sync; past the line ({int(threshold)} min) "
            "the book is stale."
            + (
                f" {hidden} more account{'s' if hidden != 1 else ''} are fresher and not drawn."
                if hidden > 0
                else ""
            )
        ),
        series=(Series("age", "Age of the book"),),
        categories=tuple(
            Category(f"Account {number}", (age or Decimal(0),), note)
            for age, number, note in rows[:ACCOUNTS_SHOWN]
        ),
        unit="minutes",
        marker=Marker(threshold, f"stale after {int(threshold)} min"),
        empty_text="No account is followed yet.",
    )


def submissions_chart(user: AnyUser) -> BarChart:
    day = clock.business_date()
    by_account = batches_by_status(user, day)
    present = [s for s in Batch.Status if any(s in counts for counts in by_account.values())]
    return BarChart(
        key="dash-submissions",
        title=f"Today's batches by status ({day:%a %d %b})",
        description="The batches of each account for today's business date, by where they stand.",
        series=tuple(Series(s.value, s.label) for s in present),
        categories=tuple(
            Category(f"Account {number}", tuple(Decimal(counts.get(s, 0)) for s in present))
            for number, counts in by_account.items()
        ),
        empty_text="No batch for today yet.",
        stacked=True,
    )
