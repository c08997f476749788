"""A supervisor's second factor in a real browser: enrol an authenticator, sign in with it, and confirm
a fresh code to approve once the step-up window has passed."""

from __future__ import annotations

import base64
import time

import pytest
from django_otp.oath import totp

from positions.models import Account, CloseRequest
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases=["default", "audit"])]


class Authenticator:
    """The supervisor's phone: it knows the key shown at enrolment and gives each code once."""

    def __init__(self, secret: str) -> None:
        self.key = base64.b32decode(secret + "=" * (-len(secret) % 8))
        self.last_step = -1

    def code(self) -> str:
        while int(time.time()) // 30 <= self.last_step:  # a code is accepted once: wait for the next
            time.sleep(0.25)
        self.last_step = int(time.time()) // 30
        return f"{totp(self.key):06d}"


def sign_in_with_password(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


def test_enrol_sign_in_and_step_up_to_approve(page, live_server, users, settings):
    settings.MFA_ENFORCED = True
    settings.STEP_UP_WINDOW_SECONDS = 3
    close = CloseRequest.objects.create(
        account=Account.objects.create(number=19816, name="Seed examples"), requested_by=users["operations"]
    )
    page.on("dialog", lambda dialog: dialog.accept())

    # First sign-in: a supervisor gets nothing but the enrolment page.
    sign_in_with_password(page, live_server, "sup_carol")
    page.wait_for_url("**/access/mfa/**")
    assert page.locator("img[alt='QR code for your authenticator']").is_visible()
    phone = Authenticator(page.locator("#totp-secret").inner_text())
    page.fill("#id_code", phone.code())
    page.click("main button.primary")
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10
    page.click("#continue")
    page.wait_for_url(f"{live_server.url}/")

    # Second sign-in: password, then a code from the authenticator.
    page.click("form[action='/logout/'] button")
    page.wait_for_url("**/login/")
    sign_in_with_password(page, live_server, "sup_carol")
    page.wait_for_url("**/access/verify/**")
    page.fill("#id_code", phone.code())
    page.click("main button.primary")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator(".whoami .user").inner_text() == "sup_carol"

    # The step-up window passes: approving asks for a fresh code, then brings the supervisor back.
    close_page = f"{live_server.url}/positions/closes/{close.pk}/"
    page.goto(close_page)
    time.sleep(3.5)
    page.click("#close-actions button.primary")
    page.wait_for_url("**/access/verify/**")
    assert "Confirm a fresh code from your authenticator to approve requests" in page.content()
    assert CloseRequest.objects.get(pk=close.pk).status == CloseRequest.Status.PENDING_APPROVAL
    page.fill("#id_code", phone.code())
    page.click("main button.primary")
    page.wait_for_url(close_page)
    page.click("#close-actions button.primary")
    page.wait_for_selector(".message.success")
    assert "Approved" in page.locator(".message.success").inner_text()
    assert CloseRequest.objects.get(pk=close.pk).status != CloseRequest.Status.PENDING_APPROVAL
    assert not [e for e in page.console_errors if "Content Security Policy" in e]
