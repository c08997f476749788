"""Signing in: every attempt on the audit chain; lockouts keyed on username and address, a limit per
address across usernames, forwarded addresses believed only from our own proxies; administrators
see and lift lockouts; a locked-out user's API token waits too."""

from __future__ import annotations

import pytest
from django.test import Client

from api.services import issue_token
from backoffice.addresses import client_address
from backoffice.audit.models import AuditEntry
from tests.access.conftest import fresh_address
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(databases=["default", "audit"])


def sign_in(client: Client, username: str, password: str, address: str, **headers: str):
    return client.post(
        "/login/", {"username": username, "password": password}, REMOTE_ADDR=address, **headers
    )


def test_sign_in_failure_and_sign_out_are_on_the_chain(client, users):
    address = fresh_address()
    ops = users["operations"]
    assert sign_in(client, ops.username, "wrong-password-1", address).status_code == 200
    assert sign_in(client, ops.username, PASSWORD, address).status_code == 302
    client.post("/logout/", REMOTE_ADDR=address)
    rows = AuditEntry.objects.filter(subject_type="sign_in", subject_id=str(ops.pk)).order_by("id")
    assert [row.action for row in rows] == ["sign_in_failed", "signed_in", "signed_out"]
    assert all(row.after["address"] == address for row in rows)
    assert rows[1].actor_username == ops.username and rows[0].actor_username is None
    sign_in(client, "nobody-by-that-name", "x", address)
    unknown = AuditEntry.objects.filter(action="sign_in_failed").latest("id")
    assert unknown.subject_id == "unknown:nobody-by-that-name"


def test_a_lockout_holds_one_username_from_one_address_only(users, settings):
    """One anonymous client can no longer lock a supervisor out of the office."""
    attacker, office = fresh_address(), fresh_address()
    sup = users["supervisors"]
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(Client(), sup.username, "guess-guess-guess", attacker)
    locked = sign_in(Client(), sup.username, PASSWORD, attacker)
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.content.decode()
    assert sign_in(Client(), sup.username, PASSWORD, office).status_code == 302
    assert AuditEntry.objects.filter(action="locked_out", subject_id=str(sup.pk)).exists()


def test_a_forged_forwarded_address_does_not_escape_the_lockout(users, settings):
    address = fresh_address()
    sup = users["supervisors2"]
    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in(Client(), sup.username, "guess", address, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
    response = sign_in(Client(), sup.username, PASSWORD, address, HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert response.status_code == 429


def test_forwarded_addresses_count_only_as_far_as_our_proxies(rf, settings):
    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 192.0.2.7")
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_address(request) == "10.0.0.2"
    settings.TRUSTED_PROXY_COUNT = 1  # our proxy appended the client it saw; the rest is the client's
    assert client_address(request) == "192.0.2.7"
    settings.TRUSTED_PROXY_COUNT = 3  # fewer hops than proxies: the header did not come through them
    assert client_address(request) == "10.0.0.2"


def test_failed_sign_ins_are_limited_per_address_across_usernames(users, settings):
    """The issue: sixty usernames from one address were all answered normally."""
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 6
    address = fresh_address()
    for n in range(6):
        assert sign_in(Client(), f"name{n}", "guess", address).status_code == 200
    blocked = sign_in(Client(), users["compliance"].username, PASSWORD, address)
    assert blocked.status_code == 429
    assert "from your address" in blocked.content.decode()
    assert sign_in(Client(), users["compliance"].username, PASSWORD, fresh_address()).status_code == 302


def test_administrators_see_and_lift_lockouts(client, users, settings):
    address = fresh_address()
    ops = users["operations2"]
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(Client(), ops.username, "guess", address)
    client.force_login(users["admins"])
    page = client.get("/access/lockouts/").content.decode()
    assert ops.username in page and address in page
    from axes.models import AccessAttempt

    attempt = AccessAttempt.objects.get(username=ops.username, ip_address=address)
    response = client.post(f"/access/lockouts/{attempt.pk}/lift/")
    assert response.status_code == 302
    assert ops.username not in client.get("/access/lockouts/").content.decode()
    assert sign_in(Client(), ops.username, PASSWORD, address).status_code == 302
    lifted = AuditEntry.objects.get(action="lockout_lifted")
    assert lifted.actor_username == users["admins"].username and lifted.before["failures"] >= 5
    # Others may not.
    client.force_login(users["supervisors"])
    assert client.get("/access/lockouts/").status_code == 403


def test_a_locked_out_users_token_waits_for_the_lockout(client, users, settings):
    ops, address = users["operations"], fresh_address()
    _, raw = issue_token(ops, "script")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    assert client.get("/api/v1/accounts/", **auth).status_code == 200
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(Client(), ops.username, "guess", address)
    response = client.get("/api/v1/accounts/", **auth)
    assert response.status_code == 401 and "locked out" in response.json()["error"]["message"]
