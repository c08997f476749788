"""One JSON error shape for bad input, page size and body caps, throttling per token."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from positions.models import Account
from tests.api.conftest import error_of

pytestmark = pytest.mark.django_db(databases=["default", "audit"])


@pytest.fixture
def maker(api_as, users):
    return api_as(users["operations"])


def test_field_errors_name_the_row_and_the_field(maker):
    Account.objects.create(number=7)
    body = {
        "account_id": 7,
        "rows": [
            {"position_id": 1, "instruction_type": "EXERCISE", "quantity": 1},
            {"position_id": 2, "instruction_type": "SELL", "quantity": "one"},
        ],
    }
    error = error_of(maker.post("/api/v1/batches/", body, format="json"))
    assert (error["status"], error["code"]) == (400, "invalid")
    assert {(f.get("row"), f["field"]) for f in error["fields"]} == {(1, "instruction_type"), (1, "quantity")}
    assert error["message"].startswith("Row 2, ")


def test_missing_and_unknown_values_are_named(maker):
    error = error_of(maker.post("/api/v1/batches/", {"rows": []}, format="json"))
    assert {f["field"] for f in error["fields"]} == {"account_id", "rows"}
    error = error_of(
        maker.post(
            "/api/v1/batches/",
            {"account_id": 999, "rows": [{"position_id": 1, "instruction_type": "EXERCISE", "quantity": 1}]},
            format="json",
        )
    )
    assert error["fields"] == [
        {"field": "account_id", "message": "Account 999 is not followed by the back-office."}
    ]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "malformed_request"),
        (b"[1, 2]", "application/json", 400, "invalid"),
        (b"account_id=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
)
def test_malformed_bodies(maker, body, content_type, status, code):
    error = error_of(maker.generic("POST", "/api/v1/batches/", body, content_type=content_type))
    assert (error["status"], error["code"]) == (status, code)


def test_unknown_addresses_and_methods_answer_json(maker):
    assert error_of(maker.get("/api/v1/nothing-here/"))["status"] == 404
    assert error_of(maker.get("/api/v1/batches"))["status"] == 404, "no slash: a JSON 404, not a redirect"
    assert error_of(maker.get("/api/v1/batches/999999/"))["code"] == "not_found"
    assert error_of(maker.delete("/api/v1/accounts/"))["code"] == "method_not_allowed"
    assert error_of(APIClient().get("/api/v1/nothing-here/"))["status"] == 401


@pytest.mark.parametrize("size", ["0", "501", "-1", "ten", "1e3"])
def test_page_size_is_capped(maker, size):
    for url in ("/api/v1/positions/", "/api/v1/batches/", "/api/v1/accounts/"):
        error = error_of(maker.get(url, {"page_size": size}))
        assert error["status"] == 400 and error["fields"][0]["field"] == "page_size"


def test_a_bad_cursor_is_a_400(maker):
    for url in ("/api/v1/positions/", "/api/v1/batches/"):
        error = error_of(maker.get(url, {"cursor": "garbage"}))
        assert error["status"] == 400 and error["fields"][0]["field"] == "cursor"


def test_batch_row_cap(maker, settings):
    settings.API_MAX_BATCH_ROWS = 2
    Account.objects.create(number=7)
    row = {"position_id": 1, "instruction_type": "EXERCISE", "quantity": 1}
    error = error_of(maker.post("/api/v1/batches/", {"account_id": 7, "rows": [row] * 3}, format="json"))
    assert error["fields"] == [{"field": "rows", "message": "A batch holds at most 2 rows; split it."}]


def test_request_body_cap(maker, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = {"account_id": 7, "note": "x" * 2000, "rows": []}
    error = error_of(maker.post("/api/v1/batches/", body, format="json"))
    assert (error["status"], error["code"]) == (413, "too_large")


def test_throttling_per_token(api_as, users, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "3/minute", "anon": "3/minute"},
    }
    first, second = api_as(users["operations"]), api_as(users["operations"])
    assert [first.get("/api/v1/accounts/").status_code for _ in range(3)] == [200, 200, 200]
    response = first.get("/api/v1/accounts/")
    error = error_of(response)
    assert (error["status"], error["code"]) == (429, "throttled") and int(response["Retry-After"]) > 0
    assert second.get("/api/v1/accounts/").status_code == 200, "each token has its own budget"
