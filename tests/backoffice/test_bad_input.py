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
