"""Syncing the mirror from the sandbox over real HTTP."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connections

from backoffice.audit.models import AuditEntry
from positions import services
from positions.models import Account, Position, SyncRun
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "audit"])

BIG = 900_001


@pytest.fixture
def upstream(sandbox, settings):
    settings.CLEAR_STREET_BASE_URL = sandbox.base_url
    settings.CLEAR_STREET_API_KEY = sandbox.api_key
    return sandbox


def sync(account: Account) -> SyncRun:
    run, created = services.request_sync(account, enqueue=False)
    assert created
    return services.run_sync(run.pk)


def test_sync_reads_every_page_and_decodes_options(upstream):
    upstream.generate(BIG, 2_500)
    account, _ = services.register_account(BIG)
    run = sync(account)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert (run.pages, run.total_pages, run.rows_received) == (3, 3, 2_500)
    assert (run.rows_added, run.rows_changed, run.rows_removed) == (2_500, 0, 0)
    assert Position.objects.filter(account=account).count() == 2_500
    account.refresh_from_db()
    assert account.snapshot_as_of == run.finished_at
    option = Position.objects.filter(account=account, instrument_type="OPTION").first()
    assert option.expiration_date and option.put_call in {"C", "P"} and option.strike > 0
    assert isinstance(option.market_value, Decimal)
    # Each page's call is in the audit, linked to the run.
    assert AuditEntry.objects.filter(sync_run_id=run.pk, method="GET").count() == 3


def test_resync_counts_changes_and_removals(upstream):
    upstream.generate(BIG, 2_000)
    account, _ = services.register_account(BIG)
    sync(account)
    upstream.generate(BIG, 1_500)
    run = sync(account)
    assert (run.rows_added, run.rows_removed) == (0, 500)
    assert Position.objects.filter(account=account).count() == 1_500
    unchanged = sync(account)
    assert (unchanged.rows_added, unchanged.rows_changed, unchanged.rows_removed) == (0, 0, 0)


def test_the_whole_books_totals_stored_by_a_sync_equal_its_rows(upstream):
    """The book of a whole account reads the totals its last sync stored: after an add, a shrink and
    a change upstream they still equal the sums of the rows, and a filtered book sums its own rows."""
    from django.contrib.auth.models import User
    from django.db.models import Count, Sum

    from positions import queries

    viewer = User.objects.create_superuser("totals-viewer")
    account, _ = services.register_account(BIG)
    for count in (2_000, 1_500, 1_700):
        upstream.generate(BIG, count)
        sync(account)
        rows = Position.objects.filter(account=account).aggregate(
            count=Count("id"),
            market_value=Sum("market_value"),
            unrealized_pnl=Sum("unrealized_pnl"),
            daily_unrealized_pnl=Sum("daily_unrealized_pnl"),
        )
        whole = queries.BookFilters(account_ids=(BIG,))
        shown = queries.totals(queries.book(whole, viewer), whole, viewer)
        assert (shown.count, shown.market_value, shown.unrealized_pnl, shown.daily_unrealized_pnl) == (
            count,
            rows["market_value"],
            rows["unrealized_pnl"],
            rows["daily_unrealized_pnl"],
        )
        options = queries.BookFilters(account_ids=(BIG,), instrument_type="OPTION")
        narrowed = queries.totals(queries.book(options, viewer), options, viewer)
        assert narrowed.count == Position.objects.filter(account=account, instrument_type="OPTION").count()


def test_closing_shows_in_available_quantity_after_the_next_sync(upstream):
    account, _ = services.register_account(122503)
    sync(account)
    stock = Position.objects.get(account=account, symbol="AAPL")
    from backoffice.clearstreet.client import ClearStreetClient

    with ClearStreetClient() as client:
        client.close_position(122503, stock.instrument_id)
    run = sync(account)
    assert run.rows_changed == 1
    stock.refresh_from_db()
    assert stock.available_quantity == 0


def test_a_failed_middle_page_leaves_the_previous_snapshot_untouched(upstream, monkeypatch):
    upstream.generate(BIG, 2_500)
    account, _ = services.register_account(BIG)
    first = sync(account)
    before = list(
        Position.objects.filter(account=account)
        .order_by("instrument_id")
        .values_list("instrument_id", "quantity")
    )
    upstream.generate(BIG, 1_200)  # the next sync would remove 1,300 positions...

    from backoffice.clearstreet.client import ClearStreetClient

    real_get = ClearStreetClient.get_positions
    pages_seen = []

    def get_then_break_upstream(self, *args, **kwargs):
        page = real_get(self, *args, **kwargs)
        pages_seen.append(page)
        if len(pages_seen) == 1:  # ...but Clear Street goes down after the first page
            upstream.set_faults({"list_positions": {"outage": True}})
        return page

    monkeypatch.setattr(ClearStreetClient, "get_positions", get_then_break_upstream)
    run = sync(account)
    assert run.status == SyncRun.Status.FAILED
    assert "ServiceUnavailable" in run.error and run.pages <= 1 and len(pages_seen) == 1
    after = list(
        Position.objects.filter(account=account)
        .order_by("instrument_id")
        .values_list("instrument_id", "quantity")
    )
    assert after == before
    account.refresh_from_db()
    assert account.snapshot_as_of == first.finished_at, "the page must not claim a fresher book"


def test_a_second_request_joins_the_running_sync(upstream):
    account, _ = services.register_account(19816)
    first, created = services.request_sync(account, enqueue=False)
    second, created_again = services.request_sync(account, enqueue=False)
    assert created and not created_again and second.pk == first.pk
    services.run_sync(first.pk)
    third, created_third = services.request_sync(account, enqueue=False)
    assert created_third and third.pk != first.pk


def test_two_workers_on_one_run_sync_it_once(upstream):
    upstream.generate(BIG, 3_000)
    upstream.set_faults({"list_positions": {"latency_ms": 150}})
    account, _ = services.register_account(BIG)
    run, _ = services.request_sync(account, enqueue=False)
    results: list[SyncRun] = []

    def worker():
        try:
            results.append(services.run_sync(run.pk))
        finally:
            connections.close_all()  # this thread's default and audit connections

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED and run.pages == 3
    assert AuditEntry.objects.filter(sync_run_id=run.pk, method="GET").count() == 3, "each page fetched once"
    assert Position.objects.filter(account=account).count() == 3_000


def test_sync_through_a_real_worker(upstream, celery_worker_process, settings):
    account, _ = services.register_account(19816)
    run, _ = services.request_sync(account)

    wait_for(lambda: not SyncRun.objects.get(pk=run.pk).is_active)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert run.celery_task_id
    assert Position.objects.filter(account=account, symbol="AAPL").exists()


def test_rows_with_bad_values_are_recorded_and_skipped_and_the_rest_stored(upstream):
    account, _ = services.register_account(19816)
    first = sync(account)
    kept = {p.instrument_id: p.market_value for p in Position.objects.filter(account=account)}
    upstream.set_faults({"list_positions": {"bad_value_rows": 2}})
    run = sync(account)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.rows_skipped == 2 and len(run.skipped) == 2
    assert {"market_value", "quantity"} == {s["problem"].split(":")[0] for s in run.skipped}
    assert all(s["raw"]["instrument_id"] in kept for s in run.skipped)
    # A skipped row is still Clear Street's position: the last good copy stays, nothing is removed.
    assert run.rows_removed == 0
    assert {p.instrument_id: p.market_value for p in Position.objects.filter(account=account)} == kept
    assert first.rows_added == len(kept)


def test_the_demo_follows_every_sandbox_account(upstream, settings, capsys):
    from django.core.management import call_command

    settings.DEBUG = True
    settings.UPSTREAM_IS_LOCAL_SANDBOX = True
    call_command("follow_sandbox_accounts", wait=5)
    assert set(Account.objects.values_list("number", flat=True)) >= {0, 19816, 122503, 48213}
    assert Account.objects.get(number=122503).name == "Expiration desk"
    assert SyncRun.objects.filter(trigger="demo").count() >= 4
    assert "122503 Expiration desk: followed" in capsys.readouterr().out


def test_following_sandbox_accounts_is_refused_in_production(settings):
    from django.core.management import CommandError, call_command

    settings.DEBUG = False
    with pytest.raises(CommandError, match="local demo"):
        call_command("follow_sandbox_accounts", wait=1)


def test_a_position_that_disappears_leaves_the_instruction_rows_drafted_on_it(upstream, users):
    """A drafted row keeps its copy of the position; only its link to the mirror is cleared."""
    from datetime import date

    from instructions.models import Batch, BatchRow

    upstream.generate(BIG, 2_000)
    account, _ = services.register_account(BIG)
    sync(account)
    batch = Batch.objects.create(
        account=account, business_date=date(2026, 11, 20), created_by=users["operations"]
    )
    BatchRow.objects.bulk_create(
        BatchRow(
            batch=batch,
            instruction_type="EXERCISE",
            position=position,
            instrument_id=position.instrument_id,
            symbol=position.symbol,
            quantity=1,
            instruction_id=f"key-{position.pk}",
        )
        for position in Position.objects.filter(account=account)
    )
    upstream.generate(BIG, 1_500)
    run = sync(account)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert run.rows_removed == 500
    rows = BatchRow.objects.filter(batch=batch)
    assert rows.count() == 2_000, "no drafted row is lost with its position"
    assert rows.filter(position__isnull=True).count() == 500
    assert not rows.filter(position__isnull=False).exclude(position__account=account).exists()


def test_a_resync_rewrites_only_the_rows_that_changed(upstream):
    account, _ = services.register_account(122503)
    first = sync(account)
    stock = Position.objects.get(account=account, symbol="AAPL")
    from backoffice.clearstreet.client import ClearStreetClient

    with ClearStreetClient() as client:
        client.close_position(122503, stock.instrument_id)
    second = sync(account)
    assert (second.rows_added, second.rows_changed, second.rows_removed) == (0, 1, 0)
    rewritten = Position.objects.filter(account=account, last_sync=second)
    assert list(rewritten.values_list("symbol", flat=True)) == ["AAPL"]
    assert Position.objects.filter(account=account, last_sync=first).count() == first.rows_added - 1
    stock.refresh_from_db()
    assert stock.first_seen_at < stock.updated_at, "a changed row keeps its identity and first sighting"


def test_rows_mirrored_before_fingerprints_are_rewritten_once(upstream):
    account, _ = services.register_account(122503)
    first = sync(account)
    Position.objects.filter(account=account).update(wire_digest=None)
    again = sync(account)
    assert again.rows_changed == first.rows_added and again.rows_added == 0
    assert sync(account).rows_changed == 0


def test_an_instrument_sent_twice_is_mirrored_once_as_last_sent(upstream, monkeypatch):
    upstream.generate(BIG, 1_500)
    account, _ = services.register_account(BIG)
    from backoffice.clearstreet.client import ClearStreetClient

    real_get = ClearStreetClient.get_positions
    repeated = {}

    def repeat_the_first_row_on_the_last_page(self, *args, **kwargs):
        page = real_get(self, *args, **kwargs)
        if not repeated:
            repeated["row"] = page.positions[0]
        elif page.next_page_token is None:
            again = repeated["row"]._replace(quantity=repeated["row"].quantity + 7)
            page.positions.append(again)
        return page

    monkeypatch.setattr(ClearStreetClient, "get_positions", repeat_the_first_row_on_the_last_page)
    run = sync(account)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert run.rows_added == 1_500 and Position.objects.filter(account=account).count() == 1_500
    row = repeated["row"]
    assert Position.objects.get(account=account, instrument_id=row.instrument_id).quantity == row.quantity + 7


def test_rows_the_mirror_cannot_hold_are_recorded_and_skipped(upstream, monkeypatch):
    """A readable row of another account, or with a text longer than its column, fails nothing."""
    account, _ = services.register_account(19816)
    from backoffice.clearstreet.client import ClearStreetClient

    real_get = ClearStreetClient.get_positions

    def with_two_odd_rows(self, *args, **kwargs):
        page = real_get(self, *args, **kwargs)
        first, second = page.positions[:2]
        page.positions[0] = first._replace(symbol="X" * 70)
        page.positions[1] = second._replace(account_id=555)
        return page

    monkeypatch.setattr(ClearStreetClient, "get_positions", with_two_odd_rows)
    run = sync(account)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert run.rows_skipped == 2
    assert sorted(s["problem"].split(":")[0] for s in run.skipped) == ["account_id", "symbol"]
    assert Position.objects.filter(account=account).count() == run.rows_received - 2
    assert not Position.objects.filter(symbol__startswith="XXXX").exists()


def test_a_sync_whose_calls_cannot_be_audited_commits_nothing(upstream, monkeypatch):
    """Audit rows are written behind the fetching, but always before the sync's transaction commits."""
    from backoffice.audit import services as audit_services

    upstream.generate(BIG, 2_500)
    account, _ = services.register_account(BIG)
    real_append = audit_services._append
    written = []

    def fail_after_the_first_page(content):
        if written:
            raise RuntimeError("audit database is full")
        written.append(real_append(content))
        return written[-1]

    monkeypatch.setattr(audit_services, "_append", fail_after_the_first_page)
    with pytest.raises(RuntimeError, match="audit database is full"):  # raised on, for the worker's log
        sync(account)
    run = SyncRun.objects.get(account=account)
    assert run.status == SyncRun.Status.FAILED and "audit database is full" in run.error
    assert not Position.objects.filter(account=account).exists()
    account.refresh_from_db()
    assert account.snapshot_as_of is None
