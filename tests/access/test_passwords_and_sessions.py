"""Passwords and sessions: change, reset by e-mail through a real SMTP server, every session of the
person ended by either, and a session nobody used for the idle timeout ended."""

from __future__ import annotations

import re
import time

import pytest
from django.contrib.auth.models import User
from django.test import Client

from access import services
from backoffice import roles
from backoffice.audit.models import AuditEntry
from tests.access.conftest import body_of
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(databases=["default", "audit"])
NEW_PASSWORD = "a-much-better-passphrase-42"


def signs_in(user: User, password: str) -> bool:
    return Client().post("/login/", {"username": user.username, "password": password}).status_code == 302


def signed_in(user: User) -> Client:
    client = Client()
    assert client.post("/login/", {"username": user.username, "password": PASSWORD}).status_code == 302
    return client


def test_a_password_change_ends_every_session_of_the_person(users):
    ops = users["operations"]
    here, elsewhere = signed_in(ops), signed_in(ops)
    response = here.post(
        "/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302 and response["Location"] == "/login/"
    for client in (here, elsewhere):
        assert client.get("/").status_code == 302  # back to the sign-in page
    assert signs_in(ops, NEW_PASSWORD) and not signs_in(ops, PASSWORD)
    changed = AuditEntry.objects.get(action="password_changed")
    assert changed.subject_id == str(ops.pk) and changed.actor_username == ops.username
    assert changed.after == {"sessions": "ended", "api_credentials_revoked": 0}


def test_a_weak_new_password_is_refused_with_a_message(users):
    client = signed_in(users["operations"])
    response = client.post(
        "/password/", {"old_password": PASSWORD, "new_password1": "short", "new_password2": "short"}
    )
    assert response.status_code == 200 and "too short" in response.content.decode()


def test_a_forgotten_password_is_reset_from_an_emailed_link(smtp, users):
    ops = User.objects.get(pk=users["operations"].pk)
    ops.email = "alice@example.com"
    ops.save()
    old_session = signed_in(ops)
    response = Client().post("/password/reset/", {"email": "alice@example.com"})
    assert response.status_code == 302
    (message,) = smtp.wait_for(1)
    assert message["To"] == "alice@example.com"
    link = re.search(r"https?://[^/\s]+(/password/reset/\S+/)", body_of(message)).group(1)
    browser = Client()
    form_page = browser.get(link, follow=True)
    assert "Set a new password" in form_page.content.decode()
    set_url = form_page.redirect_chain[-1][0]
    done = browser.post(set_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302
    assert old_session.get("/").status_code == 302  # the session from before the reset ended
    assert signs_in(ops, NEW_PASSWORD) and not signs_in(ops, PASSWORD)
    assert "no longer works" in browser.get(link, follow=True).content.decode()  # a link works once
    assert AuditEntry.objects.filter(action="password_reset", subject_id=str(ops.pk)).exists()


def test_a_new_user_sets_their_own_password_from_the_email(
    smtp, users, admin2, django_capture_on_commit_callbacks
):
    request = services.request_new_user(
        users["admins"], username="new_sup", email="carol.new@example.com", role_names=[roles.COMPLIANCE]
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.approve(admin2, request.pk)
    (message,) = smtp.wait_for(1)
    assert message["To"] == "carol.new@example.com"
    assert "new_sup" in body_of(message)


def test_an_idle_session_ends(users, settings):
    settings.SESSION_IDLE_TIMEOUT_SECONDS = 1
    ops = users["operations"]
    client = signed_in(ops)
    assert client.get("/").status_code == 200
    time.sleep(1.5)
    response = client.get("/positions/", follow=True)
    assert response.redirect_chain[0][0].startswith("/login/")
    assert "signed out after 1 minutes without activity" in response.content.decode()
    assert client.get("/").status_code == 302
    idle = AuditEntry.objects.filter(action="signed_out", subject_id=str(ops.pk)).latest("id")
    assert idle.reason == "idle timeout"


def test_an_active_session_stays(users, settings):
    # Four pauses of 2 s outlast the 6 s limit together, never one by one (even on a loaded machine).
    settings.SESSION_IDLE_TIMEOUT_SECONDS = 6
    client = signed_in(users["operations"])
    for _ in range(4):
        time.sleep(2)
        assert client.get("/").status_code == 200
