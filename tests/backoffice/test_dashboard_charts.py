"""The dashboard's pictures: each account's book age against the staleness threshold, today's batches."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from backoffice import clock
from backoffice.screens.dashboard_charts import freshness_chart, submissions_chart
from instructions.models import Batch
from positions.models import Account, SyncRun

pytestmark = pytest.mark.django_db(databases=["default", "audit"])


@pytest.fixture
def floor(settings, users):
    settings.MARKET_CLOCK = "system"
    settings.POSITIONS_STALE_AFTER_SECONDS = 600
    clock.clear_cache()
    now = timezone.now()
    fresh = Account.objects.create(number=11)
    old = Account.objects.create(number=22)
    Account.objects.create(number=33)  # never synced
    SyncRun.objects.create(
        account=fresh, status=SyncRun.Status.SUCCEEDED, finished_at=now - timedelta(minutes=3)
    )
    SyncRun.objects.create(
        account=old, status=SyncRun.Status.SUCCEEDED, finished_at=now - timedelta(minutes=95)
    )
    SyncRun.objects.create(account=old, status=SyncRun.Status.FAILED, finished_at=now - timedelta(minutes=1))
    today = clock.business_date()
    maker = users["operations"]
    for account, status in ((fresh, "submitted"), (fresh, "submitted"), (fresh, "failed"), (old, "draft")):
        Batch.objects.create(account=account, business_date=today, status=status, created_by=maker)
    Batch.objects.create(
        account=old, business_date=today - timedelta(days=1), status="submitted", created_by=maker
    )
    yield
    clock.clear_cache()


def test_freshness_oldest_first_with_the_threshold_and_words_for_what_colour_would_say(users, floor):
    chart = freshness_chart(users["operations"])
    rows = [(c.label, c.values[0], c.note) for c in chart.categories]
    assert rows[0] == ("Account 33", Decimal(0), "never synced")
    assert rows[1][0] == "Account 22" and rows[1][1] >= 95 and rows[1][2] == "stale, last sync failed"
    assert rows[2][0] == "Account 11" and 3 <= rows[2][1] < 10 and rows[2][2] == ""
    assert chart.marker is not None and chart.marker.value == 10


def test_todays_batches_by_account_and_status(users, floor):
    chart = submissions_chart(users["supervisors"])
    assert [s.key for s in chart.series] == ["draft", "submitted", "failed"]
    assert [(c.label, c.values) for c in chart.categories] == [
        ("Account 11", (Decimal(0), Decimal(2), Decimal(1))),
        ("Account 22", (Decimal(1), Decimal(0), Decimal(0))),
    ]


def test_another_desks_accounts_are_not_drawn(users, floor):
    from tests.conftest import make_user

    stranger = make_user("ops_zed", "operations")
    assert freshness_chart(stranger).categories == ()
    assert submissions_chart(stranger).categories == ()


def test_the_dashboard_draws_both_with_their_text_alternative(client, users, floor):
    client.force_login(users["operations"])
    html = client.get(reverse("dashboard")).content.decode()
    assert 'id="chart-dash-freshness"' in html and 'id="chart-dash-submissions"' in html
    assert "<title>Book freshness by account</title>" in html
    assert "stale after 10 min" in html
