"""The second factor: required for supervisors and administrators (or everyone, by setting), set up
with an authenticator and recovery codes, and confirmed again to approve, reject or administer."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from access import services
from backoffice import secondfactor
from backoffice.audit.models import AuditEntry
from positions.models import Account, CloseRequest
from tests.access.conftest import code_for
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(databases=["default", "audit"])


def sign_in(user) -> Client:
    client = Client()
    assert client.post("/login/", {"username": user.username, "password": PASSWORD}).status_code == 302
    return client


def enrol(client: Client, user) -> tuple[TOTPDevice, list[str]]:
    page = client.get("/access/mfa/")
    assert page.status_code == 200 and 'id="totp-secret"' in page.content.decode()
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    done = client.post("/access/mfa/", {"code": code_for(device)})
    assert done.status_code == 200, done.content.decode()
    codes = done.context["codes"]
    return TOTPDevice.objects.get(pk=device.pk), codes


def test_a_supervisor_must_enrol_before_anything_else(mfa_on, users):
    sup = users["supervisors"]
    client = sign_in(sup)
    response = client.get("/positions/")
    assert response.status_code == 302 and response["Location"].startswith("/access/verify/")
    assert client.get(response["Location"])["Location"].startswith("/access/mfa/")
    assert client.get("/api/v1/accounts/").json()["error"]["code"] == "second_factor_required"
    device, codes = enrol(client, sup)
    assert device.confirmed and len(codes) == 10
    assert client.get("/positions/").status_code == 200
    enrolled = AuditEntry.objects.get(action="second_factor_enrolled", subject_id=str(sup.pk))
    assert enrolled.after == {"second_factor": True, "recovery_codes": 10}


def test_operations_need_no_second_factor_unless_the_firm_says_everyone(mfa_on, users):
    assert sign_in(users["operations"]).get("/positions/").status_code == 200
    mfa_on.MFA_REQUIRED_FOR_EVERYONE = True
    assert sign_in(users["operations"]).get("/positions/").status_code == 302


def test_the_next_sign_in_asks_for_a_code_and_a_recovery_code_works_once(mfa_on, users):
    sup = users["supervisors"]
    _device, codes = enrol(sign_in(sup), sup)
    client = sign_in(sup)
    assert client.get("/").status_code == 302
    wrong = client.post("/access/verify/", {"code": "000000", "next": "/"})
    assert "did not match" in wrong.content.decode()
    time.sleep(1.1)  # each wrong code makes the next try wait longer (django-otp's throttle)
    assert (
        client.post("/access/verify/", {"code": codes[0], "next": "/positions/"})["Location"] == "/positions/"
    )
    assert client.get("/positions/").status_code == 200
    again = sign_in(sup)
    assert "did not match" in again.post("/access/verify/", {"code": codes[0]}).content.decode()
    # An address elsewhere is never a place to return to.
    time.sleep(2.1)
    fresh = again.post("/access/verify/", {"code": codes[1], "next": "https://evil.example/"})
    assert fresh["Location"] == "/"


def test_approving_needs_a_code_from_the_last_few_minutes(mfa_on, users):
    mfa_on.STEP_UP_WINDOW_SECONDS = 1
    sup = users["supervisors"]
    client = sign_in(sup)
    device, _ = enrol(client, sup)
    close = CloseRequest.objects.create(
        account=Account.objects.create(number=5), requested_by=users["operations"]
    )
    time.sleep(1.2)
    page = f"/positions/closes/{close.pk}/"
    response = client.post(f"{page}approve/", HTTP_REFERER=f"http://testserver{page}")
    assert response.status_code == 302 and response["Location"].startswith("/access/verify/")
    assert CloseRequest.objects.get(pk=close.pk).status == CloseRequest.Status.PENDING_APPROVAL
    back = client.post("/access/verify/", {"code": code_for(device), "next": f"http://testserver{page}"})
    assert back["Location"] == f"http://testserver{page}"
    client.post(f"{page}reject/", {"reason": "wrong account"})
    assert CloseRequest.objects.get(pk=close.pk).status == CloseRequest.Status.REJECTED


def test_user_administration_needs_a_fresh_code_too(mfa_on, users):
    mfa_on.STEP_UP_WINDOW_SECONDS = 1
    admin = users["admins"]
    client = sign_in(admin)
    enrol(client, admin)
    time.sleep(1.2)
    response = client.post(f"/access/users/{users['operations'].pk}/deactivate/")
    assert response["Location"].startswith("/access/verify/")
    assert users["operations"].__class__.objects.get(pk=users["operations"].pk).is_active


def test_an_administrator_resets_someone_elses_second_factor(mfa_on, users):
    sup = users["supervisors"]
    enrol(sign_in(sup), sup)
    services.reset_second_factor(users["admins"], sup.pk, "lost phone")
    assert not secondfactor.has_device(sup)
    reset = AuditEntry.objects.get(action="second_factor_reset")
    assert reset.before == {"second_factor": True} and reset.reason == "lost phone"
    # The next sign-in enrols again.
    client = sign_in(sup)
    assert client.get(client.get("/")["Location"])["Location"].startswith("/access/mfa/")


def test_the_api_asks_a_session_for_a_fresh_code_but_not_a_token(mfa_on, users, rf):
    """api.permissions.FreshSecondFactor, which the API's approve and reject actions wear."""
    from rest_framework.authentication import SessionAuthentication
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from api.authentication import ApiTokenAuthentication
    from api.permissions import FreshSecondFactor
    from api.services import issue_token

    class Decide(APIView):
        authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
        permission_classes = [FreshSecondFactor]

        def get(self, request):
            return Response({"decided": True})

    mfa_on.STEP_UP_WINDOW_SECONDS = 1
    sup = users["supervisors"]
    client = sign_in(sup)
    enrol(client, sup)

    def over_the_session():
        request = rf.get("/decide/")
        request.user, request.session = sup, client.session
        request.user.is_verified = lambda: True  # what django-otp's middleware says of this session
        return Decide.as_view()(request)

    assert over_the_session().status_code == 200
    time.sleep(1.2)
    stale = over_the_session()
    assert stale.status_code == 403 and "fresh code" in stale.data["error"]["message"]
    _, raw = issue_token(sup, "desk script")
    with_token = Decide.as_view()(rf.get("/decide/", HTTP_AUTHORIZATION=f"Bearer {raw}"))
    assert with_token.status_code == 200
