"""The front door in a real browser: sign in, see the role's navigation, sign out; no CSP violations."""

import pytest

from tests.e2e.conftest import login, logout

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases=["default", "audit"])]


def test_operations_signs_in_sees_dashboard_and_signs_out(page, live_server, users):
    login(page, live_server, "ops_alice")
    assert page.locator("h1").inner_text() == "Dashboard"
    assert page.locator(".whoami .user").inner_text() == "ops_alice"
    assert page.locator(".role-badge").inner_text() == "Operations"
    assert page.locator("#card-systems").is_visible()
    assert page.locator("#card-book").is_visible()
    assert page.locator("#card-audit").count() == 0
    # Styles load under the Content-Security-Policy (no inline styles or scripts are needed).
    background = page.evaluate("getComputedStyle(document.querySelector('.topbar')).backgroundColor")
    assert background == "rgb(19, 32, 47)"
    assert not [e for e in page.console_errors if "Content Security Policy" in e]
    logout(page)
    assert "Sign in" in page.locator("h1").inner_text()


def test_bad_password_then_lockout_message(page, live_server, users, settings):
    page.goto(f"{live_server.url}/login/")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page.fill("#id_username", "sup_carol")
        page.fill("#id_password", "not-the-password")
        page.click("button[type=submit]")
    assert "Too many failed sign-ins" in page.content()
