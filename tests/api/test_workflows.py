"""Every endpoint over the API against a synced sandbox desk: reads, filters, cursors, and the
maker-checker workflows through the same services as the pages (four eyes hold, superuser too)."""

from __future__ import annotations

import pytest

from backoffice.audit.models import AuditEntry
from instructions import services as instruction_services
from instructions.models import Batch
from positions import queries
from positions.models import CloseRequest, Order, Position, SyncRun
from tests.api.conftest import error_of
from tests.fixtures.desk import option

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "audit"])


@pytest.fixture
def apis(api_as, users) -> dict:
    return {role: api_as(user) for role, user in users.items()}


def rows_of(*specs) -> list[dict]:
    return [
        {
            "position_id": p.pk,
            "instruction_type": kind,
            "quantity": qty,
            **({"override_reason": o} if o else {}),
        }
        for p, kind, qty, o in specs
    ]


def draft(api, desk, *specs, note="") -> dict:
    response = api.post(
        "/api/v1/batches/",
        {"account_id": desk.number, "note": note, "rows": rows_of(*specs)},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


# --- reads ------------------------------------------------------------------------------------------


def test_accounts_and_positions(desk, apis):
    api = apis["compliance"]
    accounts = api.get("/api/v1/accounts/").json()["results"]
    assert [a["account_id"] for a in accounts] == [122503]
    assert api.get("/api/v1/accounts/122503/").json()["snapshot_as_of"]
    assert error_of(api.get("/api/v1/accounts/1/"))["status"] == 404
    position = Position.objects.filter(account=desk).first()
    body = api.get(f"/api/v1/positions/{position.pk}/").json()
    assert body["instrument_id"] == position.instrument_id and body["account_id"] == 122503
    assert isinstance(body["quantity"], str), "decimals travel as strings"
    assert apis["norole"].get("/api/v1/positions/").status_code == 403


def test_positions_use_the_pages_filters_and_a_stable_cursor(desk, apis, users):
    api = apis["supervisors"]
    options = api.get("/api/v1/positions/", {"instrument_type": "OPTION", "q": "AAPL"}).json()
    assert options["results"] and all(
        p["instrument_type"] == "OPTION" and p["underlying_root"] == "AAPL" for p in options["results"]
    )
    assert options["totals"]["count"] == len(options["results"])
    for sort, direction in (
        ("SYMBOL", "asc"),
        ("MARKET_VALUE", "desc"),
        ("EXPIRY", "asc"),
        ("QUANTITY", "desc"),
    ):
        filters = queries.BookFilters(sort=sort, descending=direction == "desc")
        expected = list(queries.book(filters, users["supervisors"]).values_list("id", flat=True))
        seen, url, pages = [], "/api/v1/positions/", 0
        params = {"sort": sort, "dir": direction, "page_size": 3}
        while url:
            page = api.get(url, params if pages == 0 else None).json()
            seen += [p["id"] for p in page["results"]]
            url, pages = page["next"], pages + 1
            assert pages < 100
        assert seen == expected, f"{sort} {direction}: every row once, in the page's order"
        assert page["totals"]["count"] == len(expected)
    # A cursor made for another sort is refused rather than misread.
    first = api.get("/api/v1/positions/", {"sort": "SYMBOL", "page_size": 2}).json()
    error = error_of(api.get(first["next"].replace("sort=SYMBOL", "sort=QUANTITY")))
    assert error["fields"][0]["field"] == "cursor"
    error = error_of(api.get("/api/v1/positions/", {"expiry_from": "2026-05-01", "expiry_to": "2026-04-01"}))
    assert error["fields"][0]["field"] == "expiry_to"


def test_sync_runs_list_and_trigger(desk, apis):
    runs = apis["compliance"].get("/api/v1/sync-runs/", {"account": 122503}).json()["results"]
    assert runs and runs[0]["status"] == "succeeded"
    assert apis["compliance"].get(f"/api/v1/sync-runs/{runs[0]['id']}/").status_code == 200
    assert error_of(apis["compliance"].post("/api/v1/sync-runs/", {}, format="json"))["status"] == 403
    response = apis["operations"].post("/api/v1/sync-runs/", {"account_id": 122503}, format="json")
    assert response.status_code == 202
    (run,) = response.json()["runs"]
    assert run["status"] == "queued" and run["requested_by"] == "ops_alice"
    again = apis["supervisors"].post("/api/v1/sync-runs/", {}, format="json").json()["runs"]
    assert [r["id"] for r in again] == [run["id"]], "a second request joins the queued run"
    assert SyncRun.objects.filter(account=desk, status="queued").count() == 1
    error = error_of(apis["operations"].post("/api/v1/sync-runs/", {"account_id": 5}, format="json"))
    assert error["fields"][0]["field"] == "account_id"


# --- batches under maker-checker ---------------------------------------------------------------------


def test_batch_lifecycle_over_the_api(desk, apis, users):
    itm = option(desk, "AAPL", put_call="C")
    nvda = option(desk, "NVDA")
    maker, checker = apis["operations"], apis["supervisors"]
    assert error_of(checker.post("/api/v1/batches/", {}, format="json"))["status"] == 403, (
        "checkers do not draft"
    )
    batch = draft(maker, desk, (itm, "EXERCISE", 1, ""), note="morning run")
    assert batch["status"] == "draft" and batch["version"] == 1 and batch["created_by"] == "ops_alice"
    key = batch["rows"][0]["instruction_id"]
    url = f"/api/v1/batches/{batch['id']}/"
    # Only the maker edits; an edit keeps the row's idempotency key and bumps the version.
    error = error_of(apis["operations2"].patch(url, {"note": "mine now"}, format="json"))
    assert (error["status"], error["code"]) == (403, "forbidden")
    rows = rows_of((itm, "EXERCISE", 2, ""), (nvda, "CONTRARY_EXERCISE", 1, "client reverses the default"))
    edited = maker.put(url, {"rows": rows}, format="json").json()
    assert edited["version"] == 2 and key in [r["instruction_id"] for r in edited["rows"]]
    assert maker.patch(url, {"note": "two rows"}, format="json").json()["note"] == "two rows"
    assert maker.post(f"{url}submit-for-approval/").json()["status"] == "pending_approval"
    # Checkers: stale version 409, self-approval 403 (the superuser too), then approval.
    error = error_of(checker.post(f"{url}approve/", {"version": 1}, format="json"))
    assert (error["status"], error["code"]) == (409, "stale_version") and error["fields"][0][
        "field"
    ] == "version"
    assert error_of(maker.post(f"{url}approve/", {"version": 3}, format="json"))["status"] == 403
    approved = checker.post(f"{url}approve/", {"version": 3}, format="json").json()
    assert approved["status"] == "approved" and approved["decided_by"] == "sup_carol"
    error = error_of(checker.post(f"{url}reject/", {"reason": "too late"}, format="json"))
    assert (error["status"], error["code"]) == (409, "invalid_transition")
    # The worker's part, then the instruction's timeline shows the whole story.
    instruction_services.submit_batch(batch["id"])
    listing = apis["compliance"].get("/api/v1/instructions/", {"batch": batch["id"]}).json()["results"]
    assert {i["status"] for i in listing} == {"SENT"} and len(listing) == 2
    detail = apis["compliance"].get(f"/api/v1/instructions/{listing[0]['id']}/").json()
    whats = [event["what"] for event in detail["timeline"]]
    assert any("approved" in w for w in whats) and any("SENT" in w for w in whats)
    assert any(event["request_id"] for event in detail["timeline"])
    assert apis["compliance"].get(f"/api/v1/batches/{batch['id']}/").json()["status"] == "submitted"
    assert (
        apis["compliance"].get("/api/v1/batches/", {"status": "submitted"}).json()["results"][0]["id"]
        == batch["id"]
    )


def test_superuser_cannot_approve_their_own_batch(desk, apis):
    root = apis["superuser"]
    batch = draft(root, desk, (option(desk, "AAPL", put_call="C"), "EXERCISE", 1, ""))
    url = f"/api/v1/batches/{batch['id']}/"
    root.post(f"{url}submit-for-approval/")
    error = error_of(root.post(f"{url}approve/", {"version": 1}, format="json"))
    assert (error["status"], error["code"]) == (403, "self_approval")
    assert "four-eyes" in error["message"]
    assert error_of(root.post(f"{url}reject/", {"reason": "no"}, format="json"))["code"] == "self_approval"
    assert apis["supervisors"].post(f"{url}approve/", {"version": 1}, format="json").status_code == 200


def test_service_validation_names_row_and_field(desk, apis):
    stock = Position.objects.get(account=desk, symbol="AAPL")
    itm = option(desk, "AAPL", put_call="C")
    response = apis["operations"].post(
        "/api/v1/batches/",
        {
            "account_id": 122503,
            "rows": rows_of(
                (itm, "EXERCISE", 1, ""), (stock, "EXERCISE", 1, ""), (itm, "EXERCISE", 10_000, "")
            ),
        },
        format="json",
    )
    error = error_of(response)
    assert (error["status"], error["code"]) == (400, "invalid")
    assert [(f["row"], f["field"]) for f in error["fields"]] == [(1, "position"), (2, "position")]
    assert error["message"].startswith("Row 2:") and "not an option" in error["message"]
    assert not Batch.objects.exists()


def test_reject_withdraw_and_retry(desk, apis):
    maker, checker = apis["operations"], apis["supervisors"]
    first = draft(maker, desk, (option(desk, "AAPL", put_call="C"), "EXERCISE", 1, ""))
    url = f"/api/v1/batches/{first['id']}/"
    maker.post(f"{url}submit-for-approval/")
    error = error_of(checker.post(f"{url}reject/", {"reason": "  "}, format="json"))
    assert (error["status"], error["code"], error["fields"][0]["field"]) == (400, "reason_required", "reason")
    rejected = checker.post(f"{url}reject/", {"reason": "wrong account"}, format="json").json()
    assert (rejected["status"], rejected["decision_reason"]) == ("rejected", "wrong account")
    second = draft(maker, desk, (option(desk, "NVDA"), "CONTRARY_EXERCISE", 1, "client reverses the default"))
    url = f"/api/v1/batches/{second['id']}/"
    assert error_of(checker.post(f"{url}withdraw/"))["status"] == 403, "checkers do not withdraw"
    assert maker.post(f"{url}withdraw/").json()["status"] == "withdrawn"
    error = error_of(apis["supervisors"].post(f"{url}retry/"))
    assert (error["status"], error["code"]) == (409, "invalid_transition")
    assert error_of(apis["compliance"].post(f"{url}retry/"))["status"] == 403


def test_retry_a_failed_batch(desk, apis, sandbox, settings):
    settings.INSTRUCTION_SUBMIT_RETRIES = 1
    maker, checker = apis["operations"], apis["supervisors"]
    batch = draft(maker, desk, (option(desk, "AAPL", put_call="C"), "EXERCISE", 1, ""))
    url = f"/api/v1/batches/{batch['id']}/"
    maker.post(f"{url}submit-for-approval/")
    checker.post(f"{url}approve/", {"version": 1}, format="json")
    sandbox.set_faults({"submit_instructions": {"outage": True}})
    instruction_services.submit_batch(batch["id"], final_attempt=True)
    assert maker.get(url).json()["status"] == "failed"
    sandbox.clear_faults()
    # A retry is a new approval: not the maker's, nor another maker's, but a checker's.
    assert error_of(maker.post(f"{url}retry/"))["status"] == 403
    assert error_of(apis["operations2"].post(f"{url}retry/"))["status"] == 403
    retried = apis["supervisors2"].post(f"{url}retry/").json()
    assert (retried["status"], retried["decided_by"]) == ("approved", "sup_dan")


# --- cancels and closes ------------------------------------------------------------------------------


@pytest.fixture
def sent(desk, users):
    position = option(desk, "AAPL", put_call="C")
    batch = instruction_services.create_batch(
        users["operations"], desk, [instruction_services.RowSpec(position.pk, "EXERCISE", 1)]
    )
    instruction_services.submit_for_approval(users["operations"], batch.pk)
    instruction_services.approve_batch(users["supervisors"], batch.pk)
    instruction_services.submit_batch(batch.pk)
    return batch.rows.get().instruction


def test_cancels_over_the_api(sent, apis):
    maker, checker = apis["operations2"], apis["supervisors"]
    assert (
        error_of(checker.post("/api/v1/cancel-requests/", {"instruction": sent.pk}, format="json"))["status"]
        == 403
    )
    error = error_of(maker.post("/api/v1/cancel-requests/", {"instruction": "nope"}, format="json"))
    assert error["fields"][0]["field"] == "instruction"
    cancel = maker.post(
        "/api/v1/cancel-requests/", {"instruction": sent.pk, "note": "client"}, format="json"
    ).json()
    assert cancel["status"] == "pending_approval" and cancel["instruction"] == sent.pk
    error = error_of(
        apis["operations"].post("/api/v1/cancel-requests/", {"instruction": sent.pk}, format="json")
    )
    assert (error["status"], error["code"]) == (409, "duplicate")
    url = f"/api/v1/cancel-requests/{cancel['id']}/"
    assert error_of(apis["superuser"].post(f"{url}withdraw/"))["status"] == 403, (
        "only the requester withdraws"
    )
    assert error_of(checker.post(f"{url}reject/", {"reason": ""}, format="json"))["code"] == "reason_required"
    assert checker.post(f"{url}reject/", {"reason": "keep it"}, format="json").json()["status"] == "rejected"
    again = maker.post("/api/v1/cancel-requests/", {"instruction": sent.pk}, format="json").json()
    url = f"/api/v1/cancel-requests/{again['id']}/"
    assert error_of(maker.post(f"{url}approve/"))["status"] == 403
    assert checker.post(f"{url}approve/").json()["status"] == "approved"
    listing = apis["compliance"].get("/api/v1/cancel-requests/", {"instruction": sent.pk}).json()["results"]
    assert [c["id"] for c in listing] == [again["id"], cancel["id"]]
    timeline = apis["compliance"].get(f"/api/v1/instructions/{sent.pk}/").json()["timeline"]
    assert any(f"cancel #{again['id']}" in e["what"] for e in timeline)


def test_closes_over_the_api(desk, apis):
    maker, checker = apis["operations"], apis["supervisors"]
    position = Position.objects.filter(account=desk, quantity__gt=0).first()
    body = {"account_id": 122503, "position_id": position.pk, "note": "flatten"}
    assert error_of(checker.post("/api/v1/close-requests/", body, format="json"))["status"] == 403
    all_of_it = maker.post("/api/v1/close-requests/", {"account_id": 122503}, format="json").json()
    assert all_of_it["closes_all"] is True
    url = f"/api/v1/close-requests/{all_of_it['id']}/"
    assert error_of(checker.post(f"{url}reject/", {"reason": ""}, format="json"))["status"] == 400
    assert maker.post(f"{url}withdraw/").json()["status"] == "withdrawn"
    close = maker.post("/api/v1/close-requests/", body, format="json").json()
    assert (close["status"], close["closes_all"], close["symbol"]) == (
        "pending_approval",
        False,
        position.symbol,
    )
    error = error_of(apis["operations2"].post("/api/v1/close-requests/", body, format="json"))
    assert error["status"] == 409 and "already open" in error["message"]
    url = f"/api/v1/close-requests/{close['id']}/"
    assert error_of(maker.post(f"{url}approve/"))["status"] == 403
    assert error_of(apis["superuser"].post("/api/v1/close-requests/999999/approve/"))["status"] == 404
    assert checker.post(f"{url}approve/").json()["status"] == "approved"
    # No close of the whole account beside an open close of one of its positions.
    refused = error_of(maker.post("/api/v1/close-requests/", {"account_id": 122503}, format="json"))
    assert refused["status"] == 409 and "already open" in refused["message"]
    error = error_of(
        maker.post("/api/v1/close-requests/", {"account_id": 122503, "position_id": 1}, format="json")
    )
    assert error["fields"][0]["field"] == "position_id"
    assert {
        c["id"]
        for c in apis["compliance"].get("/api/v1/close-requests/", {"status": "approved"}).json()["results"]
    } == {close["id"]}
    assert CloseRequest.objects.count() == 2


def test_orders_are_listed_and_filtered(desk, apis, users):
    close = CloseRequest.objects.create(account=desk, requested_by=users["operations"])
    for n, instrument in enumerate(["AAA", "BBB", "AAA"]):
        Order.objects.create(
            id=f"ord-{n}",
            account=desk,
            close_request=close,
            instrument_id=instrument,
            side="SELL",
            quantity=1,
            order_type="MARKET",
            time_in_force="DAY",
            status="NEW",
            filled_quantity=0,
            leaves_quantity=1,
        )
    api = apis["compliance"]
    assert [o["id"] for o in api.get("/api/v1/orders/", {"instrument_id": "AAA"}).json()["results"]] == [
        "ord-0",
        "ord-2",
    ]
    assert (
        len(api.get("/api/v1/orders/", {"account": 122503, "close_request": close.pk}).json()["results"]) == 3
    )
    page = api.get("/api/v1/orders/", {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"]
    assert [o["id"] for o in api.get(page["next"]).json()["results"]] == ["ord-2"]
    assert api.get("/api/v1/orders/ord-1/").json()["close_request_id"] == close.pk


# --- audit ---------------------------------------------------------------------------------------------


def test_audit_for_compliance_with_the_pages_filters_and_keyset_pages(desk, apis):
    assert error_of(apis["operations"].get("/api/v1/audit/"))["status"] == 403
    assert error_of(apis["supervisors"].get("/api/v1/audit/"))["status"] == 403
    api = apis["compliance"]
    total = AuditEntry.objects.filter(account_id=122503).count()
    assert total >= 1
    ids, url, params = [], "/api/v1/audit/", {"account": 122503, "page_size": 1}
    while url:
        page = api.get(url, params if not ids else None).json()
        ids += [row["id"] for row in page["results"]]
        url = page["next"]
    assert len(ids) == total == len(set(ids)) and ids == sorted(ids, reverse=True)
    newer = api.get(page["previous"]).json() if page["previous"] else None
    if newer:
        assert newer["results"][0]["id"] > ids[-1]
    calls = api.get("/api/v1/audit/", {"kind": "call", "status": "2xx"}).json()["results"]
    assert calls and all(c["kind"] == "call" and 200 <= c["status_code"] < 300 for c in calls)
    detail = api.get(f"/api/v1/audit/{calls[0]['id']}/").json()
    assert "response_body" in detail and detail["hash"] == calls[0]["hash"]
    assert "authorization" not in str(detail["request_headers"]).lower() or "sandbox-demo-key" not in str(
        detail
    )
    error = error_of(api.get("/api/v1/audit/", {"date_from": "2026-05-01", "date_to": "2026-04-01"}))
    assert error["fields"][0]["field"] == "date_to"
    assert error_of(api.get("/api/v1/audit/", {"after": "@@"}))["fields"][0]["field"] == "after"
    assert apis["admins"].get("/api/v1/audit/").status_code == 200
