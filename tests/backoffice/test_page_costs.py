"""What every page pays for under a desk's load: the navigation's badge, the dashboard's figures and
systems card, the second factor's check. Each answers as before, at a cost that does not grow with
the data."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from backoffice import health, secondfactor
from backoffice.screens import dashboard
from instructions import queries as instruction_queries
from instructions.models import Batch, BatchRow, InstructionStatus
from positions import queries as position_queries
from positions.models import Account, CloseRequest, Position
from tests.positions.factories import make_position

pytestmark = pytest.mark.django_db(databases=["default", "audit"])
S = Batch.Status


def batch_with_rows(
    account: Account, maker, status: str, rows: int, row_status: str = "", on: list[Position] | None = None
) -> Batch:
    batch = Batch.objects.create(account=account, business_date=date(2026, 4, 24), created_by=maker)
    Batch.objects.filter(pk=batch.pk).update(status=status)
    batch.status = status
    for n in range(rows):
        position = on[n % len(on)] if on else None
        BatchRow.objects.create(
            batch=batch,
            instruction_type="EXERCISE",
            position=position,
            instrument_id=f"{batch.pk}-{n}",
            symbol=position.symbol if position else f"X{n}",
            quantity=1,
            instruction_id=uuid.uuid4().hex,
            status=row_status,
        )
    return batch


def badge(client: Client) -> int:
    return int(client.get(reverse("positions:list")).context["nav_counts"]["attention"])


@pytest.fixture
def account(users, settings) -> Account:
    settings.MARKET_CLOCK = "system"  # no sandbox here
    return Account.objects.create(number=480001)  # joins the users' desk


def test_the_badge_counts_exactly_what_the_attention_list_shows_and_follows_every_change(
    client, users, account
):
    maker = users["operations"]
    client.force_login(maker)
    assert badge(client) == 0
    failed = batch_with_rows(account, maker, S.FAILED, 2)
    batch_with_rows(account, maker, S.EXPIRED, 1)
    batch_with_rows(account, maker, S.PENDING_APPROVAL, 3)  # waiting, not failed: not on the badge
    lost = batch_with_rows(account, maker, S.SUBMITTED, 2, row_status=InstructionStatus.UNKNOWN)
    batch_with_rows(account, maker, S.SUBMITTED, 2, row_status=InstructionStatus.ACCEPTED)
    close = CloseRequest.objects.create(account=account, requested_by=maker)
    CloseRequest.objects.filter(pk=close.pk).update(status=CloseRequest.Status.FAILED, error="refused")
    listed = instruction_queries.attention_items(maker, warnings=False)
    assert len(listed) == 4 and badge(client) == 4
    Batch.objects.filter(pk=failed.pk).update(acknowledged_at=timezone.now())
    assert badge(client) == 3, "an acknowledged batch leaves the badge on the next page"
    BatchRow.objects.filter(batch=lost).update(status=InstructionStatus.ACCEPTED)
    assert badge(client) == 2 == len(instruction_queries.attention_items(maker, warnings=False))
    other_desk = Account.objects.create(number=480002)
    other_desk.desks.clear()
    batch_with_rows(other_desk, maker, S.FAILED, 1)
    assert badge(client) == 2, "another desk's failures are not this desk's badge"
    client.force_login(users["superuser"])  # sees every desk
    assert badge(client) == 3 == len(instruction_queries.attention_items(users["superuser"], warnings=False))


def test_the_badge_costs_the_same_queries_however_many_batches_and_rows(client, users, account):
    maker = users["operations"]
    client.force_login(maker)
    batch_with_rows(account, maker, S.FAILED, 1)
    client.get(reverse("positions:list"))

    def page_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            client.get(reverse("positions:list"))
        return len(queries)

    few = page_queries()
    for _ in range(6):
        batch_with_rows(account, maker, S.FAILED, 5)
        batch_with_rows(account, maker, S.SUBMITTED, 5, row_status=InstructionStatus.UNKNOWN)
    assert page_queries() == few
    assert badge(client) == 13


def test_the_dashboards_book_card_adds_up_the_stored_totals_without_reading_the_rows(users, account):
    viewer = users["operations"]
    make_position(account, "AAPL", quantity="5", market_value="900.00")
    make_position(account, "AAPL  260424C00150000", quantity="2", market_value="40.50")
    make_position(account, "AAPL  260424P00140000", quantity="1", market_value="3.25")
    from_rows = position_queries.book_summary(viewer)  # no stored totals yet: the rows answer
    assert (from_rows["positions"], from_rows["options"], from_rows["accounts"]) == (3, 2, 1)
    totals = Position.objects.filter(account=account).aggregate(**position_queries.TOTALS)
    Account.objects.filter(pk=account.pk).update(
        snapshot_as_of=timezone.now(),
        book_count=totals["count"],
        book_options=totals["options"],
        book_market_value=totals["market_value"],
        book_unrealized_pnl=totals["unrealized_pnl"],
        book_daily_unrealized_pnl=totals["daily_unrealized_pnl"],
    )
    with CaptureQueriesContext(connection) as queries:
        stored = position_queries.book_summary(viewer)
    assert not any("positions_position" in q["sql"] for q in queries.captured_queries)
    assert stored["positions"] == Position.objects.visible_to(viewer).count() == 3
    assert stored["options"] == 2 and stored["accounts"] == 1
    assert stored["market_value"] == from_rows["market_value"]
    # The rows give the same answer, where an account has no stored totals to add up.
    Account.objects.filter(pk=account.pk).update(book_options=None)  # synced before it was stored
    assert position_queries.book_summary(viewer) == stored
    Account.objects.filter(pk=account.pk).update(book_options=2)
    Account.objects.create(number=480003)  # followed, never synced
    assert position_queries.book_summary(viewer) == stored


def test_the_dashboard_shows_the_checks_of_the_last_seconds(client, users, monkeypatch, settings):
    settings.MARKET_CLOCK = "system"
    runs: list[int] = []
    real = health.run_checks

    def counted() -> list[health.Check]:
        runs.append(1)
        return real()

    monkeypatch.setattr(health, "run_checks", counted)
    health.forget_recent_checks()
    client.force_login(users["operations"])
    for _ in range(3):
        assert 'id="card-systems"' in client.get(reverse("dashboard")).content.decode()
    assert len(runs) == 1, "no new connection to the broker and Clear Street per dashboard"
    monkeypatch.setattr(health, "RECENT_SECONDS", 0.0)
    client.get(reverse("dashboard"))
    assert len(runs) == 2, "older checks are run again"
    assert dashboard.recent_checks is health.recent_checks
    health.forget_recent_checks()


def device_queries(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return sum("otp_" in q["sql"] for q in queries.captured_queries)


def test_the_second_factor_check_asks_one_query_of_a_person_and_none_more_once_verified(settings, users):
    settings.MFA_ENFORCED = True
    settings.MARKET_CLOCK = "system"
    ops = users["operations"]
    client = Client()
    client.force_login(ops)
    assert device_queries(client, "/positions/") == 1, "one question for every kind of device"
    StaticDevice.objects.create(user=ops, name="backup", confirmed=True)
    assert secondfactor.has_device(ops) and secondfactor.required_for(ops)
    assert client.get("/positions/").status_code == 302, "a factor a person chose is never skipped"
    sup = users["supervisors"]
    device = TOTPDevice.objects.create(user=sup, name="phone", confirmed=True)
    verified = Client()
    verified.force_login(sup)
    session = verified.session
    session["otp_device_id"] = device.persistent_id
    session.save()
    assert device_queries(verified, "/positions/") == 1, "the session's own device, nothing else"


def test_the_cutoffs_of_a_queue_are_priced_in_one_go_and_match_each_batchs_own(client, users, account):
    maker, checker = users["operations"], users["supervisors"]
    make_position(account, "AAPL", quantity="5", market_value="900.00", instrument_price="150.00")
    options = [
        make_position(account, "AAPL  260424C00140000", quantity="2"),  # in the money
        make_position(account, "AAPL  260424C00160000", quantity="2"),  # out of it
        make_position(account, "AAPL  260501P00150000", quantity="1"),
    ]
    client.force_login(checker)

    def queue_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("instructions:approvals")).status_code == 200
        return len(queries)

    batches = [batch_with_rows(account, maker, S.PENDING_APPROVAL, 2, on=options[n:]) for n in range(3)]
    batches.append(batch_with_rows(account, maker, S.PENDING_APPROVAL, 1))  # its position left the book
    queue_queries()  # the first page of a session reads what later ones find cached (permissions, ...)
    few = queue_queries()
    one_by_one = {b.pk: instruction_queries.batch_cutoff(b) for b in batches}
    assert instruction_queries.batch_cutoffs(batches) == one_by_one
    # The queue prices the rows it already holds: the same cutoffs.
    queue = list(instruction_queries.pending_batches(checker))
    assert instruction_queries.batch_cutoffs(queue, with_rows=True) == one_by_one
    assert len(set(one_by_one.values())) > 1, "the batches have different cutoffs"
    batches += [batch_with_rows(account, maker, S.PENDING_APPROVAL, 3, on=options) for _ in range(5)]
    assert queue_queries() == few
    with CaptureQueriesContext(connection) as queries:
        bulk = instruction_queries.batch_cutoffs(batches)
    assert bulk == {b.pk: instruction_queries.batch_cutoff(b) for b in batches} and len(queries) <= 4
