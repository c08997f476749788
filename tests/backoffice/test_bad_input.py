"""Bad input never becomes a 500: NUL characters anywhere in a request are refused up front."""

import json

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db(databases=["default", "audit"])


@pytest.mark.parametrize(
    "url",
    [
        "/instructions/mirror/?q=a%00b",
        "/instructions/mirror/a%00b/",
        "/positions/?q=%00",
        "/audit/?request_id=%00",
    ],
)
def test_nul_in_the_url_is_a_400(client, users, url):
    client.force_login(users["compliance"])
    response = client.get(url)
    assert response.status_code == 400 and b"NUL" in response.content


def test_nul_in_a_form_field_is_a_400_and_changes_nothing(client, users):
    client.force_login(users["supervisors"])
    response = client.post(reverse("instructions:batch_reject", args=[1]), {"reason": "bad\x00reason"})
    assert response.status_code == 400


def test_nul_in_a_json_body_is_a_400_in_the_error_shape(client, users):
    client.force_login(users["operations"])
    body = json.dumps({"name": "x\u0000y"})
    response = client.post("/api/v1/tokens/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


# --- values a careless or hostile client sends: a clear answer, never a 500 -------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/instructions/mirror/?account=%C2%B2",  # "²": str.isdigit says yes, int() says no
        "/instructions/batches/new/?position=%C2%B2",
        "/instructions/mirror/?account=99999999999999999999999",  # past PostgreSQL's bigint
        "/positions/sync/status/?runs=1,%C2%B2",
    ],
)
def test_digits_that_are_not_numbers_are_not_a_500(client, users, url):
    client.force_login(users["operations"])
    assert client.get(url).status_code in {200, 302, 400}


@pytest.mark.parametrize(
    "cursor",
    [
        "cD14",  # DRF's cursor shape ("p=x") holding a position that is not a number
        "cD0xZTk5OTk5OQ",  # "p=1e999999"
        "not-base64-at-all!",
    ],
)
def test_an_api_cursor_that_is_not_ours_is_a_400(client, users, cursor):
    client.force_login(users["operations"])
    response = client.get("/api/v1/batches/", {"cursor": cursor})
    assert response.status_code == 400 and response.json()["error"]["fields"][0]["field"] == "cursor"


@pytest.mark.parametrize(
    "raw",
    [
        [2, "QUANTITY", False, "1e999999", 1, 1],  # a number no column holds
        ["QUANTITY", False, "5", 122503, 1],  # the earlier format: its tie was the account's number
    ],
)
def test_a_book_cursor_with_an_absurd_number_or_an_old_format_is_a_400(client, users, raw):
    import base64

    client.force_login(users["operations"])
    token = base64.urlsafe_b64encode(json.dumps(raw).encode()).decode()
    response = client.get("/api/v1/positions/", {"sort": "QUANTITY", "cursor": token})
    assert response.status_code == 400 and response.json()["error"]["fields"][0]["field"] == "cursor"


def test_the_html_batch_form_takes_as_many_rows_as_the_api(client, users, settings):
    """A 500-row form posts 3,000 fields: Django's default limit of 1,000 answered a bare 400."""
    client.force_login(users["operations"])
    rows = settings.API_MAX_BATCH_ROWS
    data = {"rows-TOTAL_FORMS": rows, "rows-INITIAL_FORMS": rows, "note": ""}
    for i in range(rows):
        data |= {
            f"rows-{i}-position_id": 999_999_000 + i,
            f"rows-{i}-instruction_type": "EXERCISE",
            f"rows-{i}-quantity": 1,
            f"rows-{i}-override_reason": "",
            f"rows-{i}-DELETE": "",
        }
    response = client.post(reverse("instructions:batch_new"), data)
    # The positions do not exist: the maker is told so and sent back to the book, not refused by Django.
    assert response.status_code == 302
