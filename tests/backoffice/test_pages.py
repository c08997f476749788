"""Base pages: login, logout, throttling, dashboard by role, health, security headers, demo users."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(databases=["default", "audit"])


def test_login_then_dashboard_then_logout(client, users):
    response = client.post(reverse("login"), {"username": "ops_alice", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    page = client.get(reverse("dashboard"))
    assert page.status_code == 200
    assert b"ops_alice" in page.content and b"Operations" in page.content
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("dashboard")).status_code == 302


def test_wrong_password_shows_a_message_not_an_error(client, users):
    response = client.post(reverse("login"), {"username": "ops_alice", "password": "wrong"})
    assert response.status_code == 200
    assert b"did not match" in response.content


def test_username_locks_after_repeated_failures_even_with_the_right_password(client, users, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "ops_alice", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "ops_alice", "password": PASSWORD})
    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content
    # Locking is by username: a colleague at the same address can still sign in.
    response = client.post(reverse("login"), {"username": "ops_bob", "password": PASSWORD})
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("role", "cards", "absent"),
    [
        ("operations", ["card-book", "card-expiration"], ["card-approvals", "card-audit"]),
        ("supervisors", ["card-book", "card-approvals"], ["card-audit"]),
        ("compliance", ["card-book", "card-audit"], ["card-approvals"]),
        ("norole", ["card-systems"], ["card-book", "card-approvals", "card-audit"]),
    ],
)
def test_dashboard_cards_follow_the_role(client, users, role, cards, absent):
    client.force_login(users[role])
    html = client.get(reverse("dashboard")).content.decode()
    for card in cards:
        assert f'id="{card}"' in html
    for card in absent:
        assert f'id="{card}"' not in html


def test_navigation_shows_admin_link_to_administrators_only(client, users):
    client.force_login(users["admins"])
    assert 'href="/admin/"' in client.get("/").content.decode()
    client.force_login(users["operations"])
    assert 'href="/admin/"' not in client.get("/").content.decode()


def test_healthz_reports_each_dependency(client, users, settings):
    client.force_login(users["operations"])
    settings.CLEAR_STREET_BASE_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    response = client.get(reverse("healthz"))
    body = response.json()
    assert set(body["checks"]) == {"database", "broker", "upstream"}
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["upstream"]["ok"] is False
    assert response.status_code == 503 and body["status"] == "degraded"


def test_healthz_is_green_when_everything_answers(client, users, settings):
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    try:
        settings.CLEAR_STREET_BASE_URL = f"http://127.0.0.1:{listener.getsockname()[1]}"
        client.force_login(users["compliance"])
        response = client.get(reverse("healthz"))
    finally:
        listener.close()
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_healthz_accepts_the_monitoring_token_and_nothing_else(client, settings):
    settings.HEALTHZ_TOKEN = "monitor-token-123"
    assert client.get(reverse("healthz")).status_code == 401
    assert client.get(reverse("healthz"), HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    response = client.get(reverse("healthz"), HTTP_AUTHORIZATION="Bearer monitor-token-123")
    assert response.status_code in (200, 503) and "checks" in response.json()


def test_liveness_answers_without_a_session_even_when_every_dependency_is_down(client, settings, monkeypatch):
    from backoffice import views

    def must_not_run() -> None:
        raise AssertionError("liveness must not call the database, broker or upstream")

    monkeypatch.setattr(views, "run_checks", must_not_run)
    settings.CLEAR_STREET_BASE_URL = "http://127.0.0.1:9"
    response = client.get(reverse("livez"))
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_readiness_names_each_dependency_and_fails_while_clear_street_is_down(client, settings):
    settings.CLEAR_STREET_BASE_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    response = client.get(reverse("readyz"))
    assert response.status_code == 503
    # Verdicts only: the versions and error texts stay behind /healthz's authentication.
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": True, "broker": True, "upstream": False},
    }


def test_readiness_is_green_when_database_broker_and_clear_street_answer(client, settings):
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    try:
        settings.CLEAR_STREET_BASE_URL = f"http://127.0.0.1:{listener.getsockname()[1]}"
        response = client.get(reverse("readyz"))
    finally:
        listener.close()
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_every_response_carries_a_content_security_policy(client, users):
    for response in (client.get(reverse("login")), client.get("/no-such-page/")):
        csp = response["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"


def test_unknown_page_is_a_friendly_404(client, users):
    client.force_login(users["operations"])
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert b"There is no page at this address" in response.content


def test_demo_users_are_refused_when_debug_is_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("seed_demo")


def test_demo_users_get_one_role_each(settings, capsys, client):
    from django.contrib.auth import get_user_model

    settings.DEBUG = True
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "supervisor-demo-pass-1" in out
    response = client.post(reverse("login"), {"username": "supervisor", "password": "supervisor-demo-pass-1"})
    assert response.status_code == 302
    user = get_user_model().objects.get(username="supervisor")
    assert [g.name for g in user.groups.all()] == ["supervisors"]
    assert user.has_perm("backoffice.approve_requests") and not user.has_perm("backoffice.draft_requests")
