"""The instructions pages over HTTP: drafting from a selection, review, approval, the worksheet."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from backoffice.audit.models import AuditEntry
from instructions.models import Batch, Instruction
from positions.models import Position
from tests.fixtures.desk import option

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "audit"])


def formset_post(rows: list[dict], note: str = "") -> dict:
    data = {"rows-TOTAL_FORMS": str(len(rows)), "rows-INITIAL_FORMS": str(len(rows)), "note": note}
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"rows-{i}-{key}"] = value
    return data


def test_worksheet_shows_every_expiring_option_with_its_outcome_and_deadlines(client, users, desk):
    client.force_login(users["operations"])
    response = client.get(reverse("instructions:worksheet"))
    sheet = response.context["sheet"]
    assert str(sheet.day) == "2026-04-24" and sheet.is_expiration_day
    expiring = Position.objects.filter(account=desk, expiration_date=sheet.day)
    # The head sums every expiring option, one line per underlying; no row is built until one is opened.
    assert sheet.positions == expiring.count() and not sheet.rows
    assert {g.underlying for g in sheet.groups} == set(expiring.values_list("underlying_root", flat=True))
    html = response.content.decode()
    assert "17:30 ET" in html and "16:30 ET" in html  # the contrary cutoff (CEA) and the firm's cutoff
    rows = []
    for group in sheet.groups:
        opened = client.get(reverse("instructions:worksheet"), {"underlying": group.underlying})
        rows += opened.context["sheet"].rows
        assert {row.position.underlying_root for row in opened.context["sheet"].rows} == {group.underlying}
    assert {row.position.symbol for row in rows} == set(expiring.values_list("symbol", flat=True))
    outcomes = {row.position.symbol: (row.default.value, row.is_long) for row in rows}
    assert ("EXERCISED", True) in outcomes.values()  # a long ITM contract
    assert ("LAPSES", True) in outcomes.values()  # a long OTM contract
    assert ("NO_ASSIGNMENT_EXPECTED", False) in outcomes.values()  # the short OTM call
    # The underlying's price is a followed account's position in it, and says so.
    for row in rows:
        stock = Position.objects.filter(instrument_id=row.position.underlying_instrument_id).first()
        assert (row.price.price if row.price else None) == (stock.instrument_price if stock else None)
        if row.price:
            assert row.price.source == f"position in account {desk.number}"
    priced = [row for row in rows if row.price is not None]
    assert priced and all(
        row.in_the_money
        == (row.price.price - row.position.strike) * (1 if row.position.put_call == "C" else -1)
        for row in priced
    )


def test_worksheet_query_count_does_not_grow_with_rows(client, users, desk):
    from datetime import date

    from tests.positions.factories import make_position, option_symbol

    client.force_login(users["operations"])
    client.get(reverse("instructions:worksheet"))

    def count() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(
                reverse("instructions:worksheet"), {"day": "2026-04-24", "underlying": "ZZZ"}
            )
        return len(captured), len(response.context["sheet"].rows)

    make_position(desk, option_symbol("ZZZ", date(2026, 4, 24), "C", 199), "2", "10.00")
    before, rows_before = count()
    for strike in range(200, 230):
        make_position(
            desk,
            option_symbol("ZZZ", date(2026, 4, 24), "C", strike),
            "2",
            "10.00",
            underlying_instrument_id="zzz-underlying",
        )
    after, rows_after = count()
    assert rows_after == rows_before + 30
    assert before == after


def test_instructions_in_flight_change_the_outcome(client, users, desk):
    from instructions import services

    itm = option(desk, "AAPL", put_call="C")
    batch = services.create_batch(
        users["operations"], desk, [services.RowSpec(itm.pk, "DO_NOT_EXERCISE", 1, "client keeps the option")]
    )
    services.submit_for_approval(users["operations"], batch.pk)
    services.approve_batch(users["supervisors"], batch.pk)
    services.submit_batch(batch.pk)
    client.force_login(users["operations"])
    sheet = client.get(reverse("instructions:worksheet"), {"underlying": "AAPL"}).context["sheet"]
    row = next(r for r in sheet.rows if r.position.pk == itm.pk)
    assert row.default.value == "EXERCISED" and row.changed_by_instructions
    assert "DO_NOT_EXERCISE" in [i.instruction_type for i in row.in_flight]
    outcomes = [(n, outcome.value, why) for n, outcome, why in row.outcomes]
    assert (1, "LAPSES", "Do not exercise") in outcomes
    assert sum(n for n, _, _ in outcomes) == itm.quantity
    assert outcomes[-1][1:] == ("EXERCISED", "no instruction")
    aapl = next(g for g in sheet.groups if g.underlying == "AAPL")
    assert aapl.outcomes["Lapses"] >= 1, "the head counts the instructed contract's outcome"


def test_draft_from_a_selection_then_submit_and_approve_through_the_pages(client, users, desk):
    first, second = option(desk, "AAPL", put_call="C"), option(desk, "MSFT", put_call="P")
    client.force_login(users["operations"])
    page = client.get(
        reverse("instructions:batch_new"), {"position": [first.pk, second.pk], "type": "EXERCISE"}
    )
    assert page.status_code == 200 and len(page.context["formset"].forms) == 2
    rows = [
        {
            "position_id": f.initial["position_id"],
            "instruction_type": "EXERCISE",
            "quantity": f.initial["quantity"],
        }
        for f in page.context["formset"].forms
    ]
    response = client.post(reverse("instructions:batch_new"), formset_post(rows, "desk A"))
    batch = Batch.objects.get()
    assert response["Location"] == reverse("instructions:batch_detail", args=[batch.pk])
    client.post(reverse("instructions:batch_submit", args=[batch.pk]))
    batch.refresh_from_db()
    assert batch.status == Batch.Status.PENDING_APPROVAL

    own = client.post(reverse("instructions:batch_approve", args=[batch.pk]), {"version": batch.version})
    assert own.status_code == 403, "a maker has no approve permission at all"
    client.force_login(users["superuser"])
    client.post(reverse("instructions:batch_approve", args=[batch.pk]), {"version": batch.version})
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.APPROVED, (
        "a superuser who did not draft may approve"
    )


def test_validation_errors_are_shown_on_the_row_they_are_about(client, users, desk):
    stock = Position.objects.get(account=desk, symbol="AAPL")
    itm = option(desk, "AAPL", put_call="C")
    client.force_login(users["operations"])
    rows = [
        {"position_id": itm.pk, "instruction_type": "EXERCISE", "quantity": "1"},
        {"position_id": stock.pk, "instruction_type": "EXERCISE", "quantity": "1"},
    ]
    response = client.post(reverse("instructions:batch_new"), formset_post(rows), follow=True)
    text = response.content.decode()
    assert "Nothing was drafted: fix the rows marked below." in text
    forms = response.context["formset"].forms
    assert not forms[0].errors
    assert "AAPL is not an option" in " ".join(forms[1].non_field_errors())
    assert 'value="1"' in text, "what the maker typed is kept"
    assert not Batch.objects.exists()


def test_checker_sees_drift_and_must_confirm(client, users, desk):
    from instructions import services

    itm = option(desk, "AAPL", put_call="C")
    batch = services.create_batch(users["operations"], desk, [services.RowSpec(itm.pk, "EXERCISE", 1)])
    services.submit_for_approval(users["operations"], batch.pk)
    Position.objects.filter(pk=itm.pk).update(quantity=itm.quantity + 5)
    client.force_login(users["supervisors"])
    page = client.get(reverse("instructions:batch_detail", args=[batch.pk])).content.decode()
    assert "Positions changed since the batch was drafted" in page and "confirm_changes" in page
    refused = client.post(reverse("instructions:batch_approve", args=[batch.pk]), {"version": 1}, follow=True)
    assert "Confirm the changes to approve" in refused.content.decode()
    client.post(
        reverse("instructions:batch_approve", args=[batch.pk]), {"version": 1, "confirm_changes": "on"}
    )
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.APPROVED
    approval = AuditEntry.objects.get(subject_id=str(batch.pk), action="approved")
    assert "confirmed" in approval.reason


def test_instruction_timeline_and_cancel_from_the_page(client, users, desk, sandbox):
    from instructions import services

    itm = option(desk, "AAPL", put_call="C")
    batch = services.create_batch(users["operations"], desk, [services.RowSpec(itm.pk, "EXERCISE", 1)])
    services.submit_for_approval(users["operations"], batch.pk)
    services.approve_batch(users["supervisors"], batch.pk)
    batch = services.submit_batch(batch.pk)
    instruction = Instruction.objects.get(batch_row__batch=batch)
    client.force_login(users["operations2"])
    response = client.post(
        reverse("instructions:cancel_request", args=[instruction.pk]), {"note": "wrong size"}
    )
    cancel_url = response["Location"]
    assert re.match(r"/instructions/cancels/\d+/$", cancel_url)
    detail = client.get(reverse("instructions:instruction_detail", args=[instruction.pk])).content.decode()
    for step in (
        "drafted",
        "submitted for approval",
        "approved",
        "submitted to Clear Street",
        "status — → SENT",
        "requested cancel",
        batch.request_id,
    ):
        assert step in detail, step


def test_sync_instructions_command(desk, capsys):
    call_command("sync_instructions", account=[122503])
    out = capsys.readouterr().out
    assert out.startswith("122503: ") and "instructions mirrored" in out


def test_position_page_shows_its_instructions_and_the_audit_rows_that_touched_it(client, users, desk):
    from instructions import services

    itm = option(desk, "AAPL", put_call="C")
    other = option(desk, "NVDA")
    batch = services.create_batch(users["operations"], desk, [services.RowSpec(itm.pk, "EXERCISE", 1)])
    services.submit_for_approval(users["operations"], batch.pk)
    services.approve_batch(users["supervisors"], batch.pk)
    batch = services.submit_batch(batch.pk)
    client.force_login(users["supervisors"])
    response = client.get(reverse("positions:detail", args=[itm.pk]))
    html = response.content.decode()
    key = batch.rows.get().instruction_id
    assert 'id="position-instructions"' in html and key in html
    audit = response.context["audit_entries"]
    assert batch.request_id in {e.request_id for e in audit}, "the submit call that carried it"
    assert {"drafted", "approved"} <= {e.action for e in audit}
    unrelated = client.get(reverse("positions:detail", args=[other.pk])).context["audit_entries"]
    assert batch.request_id not in {e.request_id for e in unrelated}


def test_drafting_for_two_accounts_is_all_or_nothing(client, users, desk):
    from positions import services as positions

    floor, _ = positions.register_account(0)
    run, _ = positions.request_sync(floor, enqueue=False)
    positions.run_sync(run.pk)
    mine = option(desk, "AAPL", put_call="C")
    theirs = (
        Position.objects.filter(account=floor, instrument_type="OPTION", quantity__gt=0)
        .order_by("symbol")
        .first()
    )
    stock = Position.objects.get(account=desk, symbol="AAPL")
    client.force_login(users["operations"])
    rows = [
        {
            "position_id": theirs.pk,
            "instruction_type": "EXERCISE",
            "quantity": "1",
            "override_reason": "desk call",
        },
        {"position_id": stock.pk, "instruction_type": "EXERCISE", "quantity": "1"},
    ]
    response = client.post(reverse("instructions:batch_new"), formset_post(rows))
    assert response.status_code == 200 and "AAPL is not an option" in response.content.decode()
    assert not Batch.objects.exists(), "no batch (not even a withdrawn one) for the valid account"
    rows[1] = {"position_id": mine.pk, "instruction_type": "EXERCISE", "quantity": "1"}
    client.post(reverse("instructions:batch_new"), formset_post(rows))
    assert sorted(Batch.objects.values_list("account__number", flat=True)) == [0, 122503]
