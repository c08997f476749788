"""API test helpers: a client per user, authenticated with a real API token."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.cache import caches
from rest_framework.test import APIClient

from api.services import issue_token


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    caches["api_throttle"].clear()
    yield


@pytest.fixture
def api_as(db) -> Callable[..., APIClient]:
    """``api_as(user)``: an APIClient sending ``Authorization: Bearer <a new token of user>``."""

    def make(user, name: str = "tests") -> APIClient:
        _, raw = issue_token(user, name)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        client.token = raw
        return client

    return make


def error_of(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "status", "message", "fields"}, error
    assert error["status"] == response.status_code
    assert error["message"] and error["message"][0].isupper()
    return error
