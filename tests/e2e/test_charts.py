"""The pictures in a real browser: each chart page draws its SVGs (under the CSP: no console error),
each with a screenshot kept as a test artefact; a saved view becomes the book's default."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from positions.models import SyncRun
from tests.e2e.conftest import login
from tests.fixtures.desk import option

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases=["default", "audit"])]

ARTEFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artefacts" / "charts"

PAGES = {
    "dashboard": ("/", ["dash-freshness", "dash-submissions"]),
    "book": (
        "/positions/?account=122503",
        [
            "book-market-value-underlying",
            "book-unrealized-pnl-underlying",
            "book-market-value-expiry",
            "book-unrealized-pnl-expiry",
        ],
    ),
    "worksheet": ("/instructions/worksheet/", ["ws-outcomes", "ws-moneyness"]),
}


def test_every_chart_page_draws_its_charts(page, live_server, users, desk):
    from instructions import services

    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    itm = option(desk, "AAPL", put_call="C")
    services.create_batch(users["operations"], desk, [services.RowSpec(itm.pk, "EXERCISE", 1, "")])
    # The book was synced 40 minutes ago: its freshness bar has a length.
    SyncRun.objects.create(
        account=desk, status=SyncRun.Status.SUCCEEDED, finished_at=timezone.now() - timedelta(minutes=40)
    )
    login(page, live_server, "ops_alice")
    for name, (path, keys) in PAGES.items():
        page.goto(f"{live_server.url}{path}")
        drawn = 0
        for key in keys:
            figure = page.locator(f"#chart-{key}")
            svg = figure.locator("svg[role=img]")
            assert svg.is_visible(), f"{name}: {key} is not drawn"
            box = svg.bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 10
            assert figure.locator("text.chart-label").count() > 0
            assert svg.get_attribute("aria-label")
            # The bars are filled with their pattern (the stylesheet loaded, nothing refused by the CSP).
            # A bar of zero (a book synced this minute) is said in words only.
            bars = figure.locator("rect.chart-bar")
            if bars.count():
                drawn += 1
                assert bars.first.evaluate("el => getComputedStyle(el).fill").startswith("url(")
            figure.screenshot(path=str(ARTEFACTS / f"{name}-{key}.png"))
        assert drawn, f"{name}: no chart has a bar"
        page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)
        # The numbers behind a chart open on a click.
        page.locator(f"#chart-{keys[0]} details.chart-data summary").click()
        assert page.locator(f"#chart-{keys[0]} details.chart-data table").is_visible()
    assert page.console_errors == []


def test_a_saved_view_becomes_the_books_default(page, live_server, users, desk):
    login(page, live_server, "ops_alice")
    page.goto(f"{live_server.url}/positions/")
    page.select_option("#id_instrument_type", "OPTION")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**instrument_type=OPTION**")
    page.click("#saved-views summary")
    page.fill("#saved-view-name-book", "Options only")
    page.check("#saved-views input[name=is_default]")
    page.click("#saved-views button:text('Save view')")
    page.wait_for_url("**instrument_type=OPTION**")
    assert "Saved the view “Options only” as your default." in page.content()
    page.goto(f"{live_server.url}/positions/")
    page.wait_for_url("**instrument_type=OPTION**")
    assert page.locator("#id_instrument_type").input_value() == "OPTION"
    assert "Saved views: Options only" in page.locator("#saved-views summary").inner_text()
    page.screenshot(path=str(ARTEFACTS / "book-saved-view.png"), full_page=True)
    assert page.console_errors == []
