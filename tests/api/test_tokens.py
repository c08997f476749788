"""API tokens: hashed at rest, shown once, expiry, revocation by the owner and by an admin, last use."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from api.models import ApiToken
from api.services import issue_token
from backoffice.audit.models import AuditEntry
from tests.api.conftest import error_of

pytestmark = pytest.mark.django_db(databases=["default", "audit"])


def bearer(raw: str, scheme: str = "Bearer") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {raw}")
    return client


def test_a_session_creates_a_token_shown_once_and_stored_only_as_a_hash(client, users):
    client.force_login(users["operations"])
    response = client.post("/api/v1/tokens/", {"name": "risk system"}, content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    raw = body["token"]
    assert raw.startswith("bo_") and len(raw) > 40
    token = ApiToken.objects.get(pk=body["id"])
    assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    stored = [str(value) for value in ApiToken.objects.filter(pk=token.pk).values().get().values()]
    assert raw not in stored, "the token itself is never stored"
    listed = client.get("/api/v1/tokens/").json()["results"]
    assert listed[0]["prefix"] == raw[:10] and "token" not in listed[0]
    assert AuditEntry.objects.filter(action="issued_api_token", subject_id=str(token.pk)).exists()
    assert raw not in str(list(AuditEntry.objects.filter(subject_type="api_token").values()))
    # The token works, with either scheme, and records its last use.
    assert bearer(raw).get("/api/v1/accounts/").status_code == 200
    assert bearer(raw, "Token").get("/api/v1/accounts/").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_a_token_cannot_mint_tokens(api_as, users):
    api = api_as(users["operations"])
    error = error_of(api.post("/api/v1/tokens/", {"name": "more"}, format="json"))
    assert error["code"] == "forbidden" and "browser session" in error["message"]


def test_unknown_expired_and_revoked_tokens_get_401(users):
    error = error_of(bearer("bo_not-a-real-token").get("/api/v1/accounts/"))
    assert (error["status"], error["code"]) == (401, "authentication_failed")
    token, raw = issue_token(
        users["operations"], "short-lived", expires_at=timezone.now() + timedelta(hours=1)
    )
    assert bearer(raw).get("/api/v1/accounts/").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = bearer(raw).get("/api/v1/accounts/")
    assert response.status_code == 401 and "expired" in error_of(response)["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert error_of(bearer("a b c", "Bearer").get("/api/v1/accounts/"))["status"] == 401


def test_expiry_must_be_in_the_future(client, users):
    client.force_login(users["operations"])
    past = (timezone.now() - timedelta(days=1)).isoformat()
    error = error_of(
        client.post("/api/v1/tokens/", {"name": "x", "expires_at": past}, content_type="application/json")
    )
    assert (error["status"], error["code"]) == (400, "invalid")


def test_owner_revokes_and_others_cannot(users):
    token, raw = issue_token(users["operations"], "script")
    other = bearer(issue_token(users["operations2"], "mine")[1])
    error = error_of(other.delete(f"/api/v1/tokens/{token.pk}/"))
    assert error["status"] == 404, "someone else's token is not even visible"
    assert bearer(raw).get("/api/v1/accounts/").status_code == 200
    owner = bearer(issue_token(users["operations"], "second")[1])
    assert owner.delete(f"/api/v1/tokens/{token.pk}/").status_code == 204
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == users["operations"]
    response = bearer(raw).get("/api/v1/accounts/")
    assert response.status_code == 401 and "revoked" in error_of(response)["message"]
    assert owner.delete(f"/api/v1/tokens/{token.pk}/").status_code == 204, "revoking twice is harmless"


def test_admin_sees_and_revokes_anyones_token(users):
    token, raw = issue_token(users["supervisors"], "dashboard")
    admin = bearer(issue_token(users["admins"], "admin")[1])
    assert token.pk in [t["id"] for t in admin.get("/api/v1/tokens/").json()["results"]]
    assert admin.delete(f"/api/v1/tokens/{token.pk}/").status_code == 204
    assert bearer(raw).get("/api/v1/accounts/").status_code == 401
    assert AuditEntry.objects.filter(
        action="revoked_api_token", subject_id=str(token.pk), actor_username=users["admins"].username
    ).exists()


def test_a_token_of_a_deactivated_user_stops_working(users):
    _, raw = issue_token(users["operations"], "script")
    users["operations"].is_active = False
    users["operations"].save()
    assert bearer(raw).get("/api/v1/accounts/").status_code == 401


def test_management_command_prints_the_token_once(users):
    out, err = StringIO(), StringIO()
    call_command(
        "create_api_token",
        users["compliance"].username,
        "--name",
        "archive",
        "--days",
        "30",
        stdout=out,
        stderr=err,
    )
    raw = out.getvalue().strip()
    token = ApiToken.objects.get(key_hash=hashlib.sha256(raw.encode()).hexdigest())
    assert token.user == users["compliance"] and token.expires_at is not None
    assert bearer(raw).get("/api/v1/audit/").status_code == 200


def test_a_session_needs_csrf_for_writes(users):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(users["operations"])
    assert client.get("/api/v1/accounts/").status_code == 200
    error = error_of(client.post("/api/v1/tokens/", {"name": "x"}, format="json"))
    assert error["status"] == 403 and "CSRF" in error["message"]
