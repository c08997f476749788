"""API tokens: they expire by default, their first use is recorded, they die with their owner's
deactivation or password reset, and an address sending wrong tokens is slowed down."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from api.models import ApiToken
from api.services import issue_token
from backoffice.audit.models import AuditEntry
from tests.access.conftest import fresh_address

pytestmark = pytest.mark.django_db(databases=["default", "audit"])


def test_a_token_expires_after_the_default_lifetime_unless_an_earlier_date_is_asked(client, users, settings):
    client.force_login(users["operations"])
    made = client.post(
        "/api/v1/tokens/", {"name": "risk system", "expires_at": None}, content_type="application/json"
    )
    assert made.status_code == 201
    expires = ApiToken.objects.get(pk=made.json()["id"]).expires_at
    assert abs(expires - (timezone.now() + timedelta(days=90))) < timedelta(minutes=1)
    settings.API_TOKEN_DEFAULT_DAYS = 7
    _, _raw = issue_token(users["operations"], "short")
    assert ApiToken.objects.latest("id").expires_at < timezone.now() + timedelta(days=8)
    soon = (timezone.now() + timedelta(days=2)).isoformat()
    made = client.post(
        "/api/v1/tokens/", {"name": "two days", "expires_at": soon}, content_type="application/json"
    )
    assert made.json()["expires_at"][:10] == soon[:10]


def test_a_tokens_first_use_is_recorded_once(client, users):
    token, raw = issue_token(users["compliance"], "reader")
    address = fresh_address()
    for _ in range(3):
        assert (
            client.get(
                "/api/v1/accounts/", HTTP_AUTHORIZATION=f"Bearer {raw}", REMOTE_ADDR=address
            ).status_code
            == 200
        )
    first = AuditEntry.objects.filter(action="api_token_first_used", subject_id=str(token.pk))
    assert first.count() == 1 and first.get().after["address"] == address


def test_a_password_reset_ends_the_owners_tokens(users):
    from access import services

    token, _ = issue_token(users["operations"], "script")
    services.password_changed(users["operations"], how="reset")
    token.refresh_from_db()
    assert token.is_revoked
    revoked = AuditEntry.objects.get(action="revoked_api_token", subject_id=str(token.pk))
    assert revoked.reason == "password reset"


def test_wrong_tokens_from_one_address_are_throttled(users, settings):
    settings.API_INVALID_TOKEN_RATE = "3/minute"
    _, good = issue_token(users["operations"], "script")
    guesser, elsewhere = fresh_address(), fresh_address()
    client = Client()
    for n in range(3):
        response = client.get(
            "/api/v1/accounts/", HTTP_AUTHORIZATION=f"Bearer bo_guess{n}", REMOTE_ADDR=guesser
        )
        assert response.status_code == 401
    slowed = client.get("/api/v1/accounts/", HTTP_AUTHORIZATION=f"Bearer {good}", REMOTE_ADDR=guesser)
    assert slowed.status_code == 429 and "Retry-After" in slowed.headers
    assert "invalid API tokens" in slowed.json()["error"]["message"]
    assert (
        client.get(
            "/api/v1/accounts/", HTTP_AUTHORIZATION=f"Bearer {good}", REMOTE_ADDR=elsewhere
        ).status_code
        == 200
    )
