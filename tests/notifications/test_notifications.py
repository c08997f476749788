"""Notifications: who hears of what (the desk's checkers, the maker, compliance), folding, preferences,
delivery by e-mail through a real SMTP server and to a webhook, and that none of it can break or
delay the action that caused it."""

from __future__ import annotations

import json
import logging
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.test import Client
from django.utils import timezone

from backoffice import clock
from backoffice.audit.models import ChainVerification
from backoffice.models import Job
from instructions import services
from instructions.models import Batch
from instructions.services import RowSpec
from notifications import services as notifications
from notifications.models import Kind, Notification, Preference
from positions.models import Account, Desk, SyncRun
from tests.conftest import make_user
from tests.fixtures.desk import option

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "audit"])


def submitted(desk, users) -> Batch:
    batch = services.create_batch(
        users["operations"], desk, [RowSpec(option(desk, "AAPL", put_call="C").pk, "EXERCISE", 1)]
    )
    return services.submit_for_approval(users["operations"], batch.pk)


@pytest.fixture
def admin_gail(db):
    return make_user("admin_gail", "admins", is_staff=True)


def told(user, kind: str | None = None) -> list[Notification]:
    rows = Notification.objects.filter(recipient=user)
    return list(rows.filter(kind=kind) if kind else rows)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the probe closes


# --- who hears of what ------------------------------------------------------------------------------


def test_a_submission_tells_the_desks_checkers_and_nobody_else(desk, users):
    other_desk = Desk.objects.create(name="Rates")
    other_desk.accounts.add(Account.objects.create(number=999001, name="elsewhere"))
    elsewhere = make_user("sup_ivan", "supervisors")
    other_desk.members.add(elsewhere)

    batch = submitted(desk, users)

    for checker in (users["supervisors"], users["supervisors2"]):
        (row,) = told(checker)
        assert row.kind == Kind.AWAITING_APPROVAL
        assert row.title == f"Batch #{batch.pk} awaits your approval"
        assert row.url == f"/instructions/batches/{batch.pk}/"
    assert not told(elsewhere), "another desk's checker hears nothing"
    assert not told(users["operations"]), "the maker does not approve their own batch"
    assert not told(users["operations2"]) and not told(users["compliance"])


def test_a_close_and_an_access_request_await_their_own_checkers(desk, users, admin_gail):
    from access import services as access
    from positions import services as positions
    from positions.models import Position

    stock = Position.objects.get(account=desk, symbol="AAPL")
    close = positions.request_close(users["operations"], desk, position=stock, note="de-risk")
    (row,) = told(users["supervisors"])
    assert row.title == f"Close request #{close.pk} awaits your approval"
    assert row.url == f"/positions/closes/{close.pk}/"

    users["norole"].is_active = False
    users["norole"].save()
    request = access.request_reactivation(users["admins"], users["norole"].pk)
    (row,) = told(admin_gail)
    assert row.title == f"Access request #{request.pk} awaits your approval"
    assert not told(users["admins"]), "not the administrator who asked"


def test_a_checker_whose_access_the_maker_asked_for_is_not_asked(desk, users):
    from backoffice.models import AccessRequest

    AccessRequest.objects.create(
        subject=users["supervisors2"],
        requested_by=users["operations"],
        status=AccessRequest.Status.APPLIED,
        kind=AccessRequest.Kind.CHANGE_ACCESS,
    )
    submitted(desk, users)
    assert told(users["supervisors"]) and not told(users["supervisors2"])


def test_the_maker_hears_the_decision_and_the_queue_clears(desk, users):
    batch = submitted(desk, users)
    services.reject_batch(users["supervisors"], batch.pk, "wrong account")

    (row,) = told(users["operations"])
    assert row.kind == Kind.DECISION
    assert row.title == f"Batch #{batch.pk} was rejected by sup_carol"
    assert row.detail == "wrong account" and row.url == f"/instructions/batches/{batch.pk}/"
    for checker in (users["supervisors"], users["supervisors2"]):
        assert told(checker)[0].read_at is not None, "decided: it no longer awaits anyone"


def test_a_failed_submission_tells_the_maker_and_the_desks_checkers(desk, users, sandbox, settings):
    settings.INSTRUCTION_SUBMIT_RETRIES = 1
    batch = submitted(desk, users)
    services.approve_batch(users["supervisors"], batch.pk)
    sandbox.set_faults({"submit_instructions": {"outage": True}})
    assert services.submit_batch(batch.pk, final_attempt=True).status == Batch.Status.FAILED

    for person in (users["operations"], users["supervisors"], users["supervisors2"]):
        (row,) = told(person, Kind.NOT_DONE)
        assert row.title == f"Batch #{batch.pk} on account {desk.number}: failed"
        assert row.url == f"/instructions/batches/{batch.pk}/"
    assert not told(users["operations2"], Kind.NOT_DONE), "another maker's batch"


def test_a_rejection_found_after_the_answer_tells_the_maker_and_the_desks_checkers(desk, users, sandbox):
    # Clear Street answers SENT, then rejects the instruction a minute later: only a poll of its list
    # finds that out, and nothing on the desk moves by itself.
    sandbox.set_behaviour(
        accept_delay_seconds=30, outcome="REJECTED", rejection_reason="Position not found at OCC"
    )
    batch = submitted(desk, users)
    services.approve_batch(users["supervisors"], batch.pk)
    assert services.submit_batch(batch.pk).status == Batch.Status.SUBMITTED
    assert not Notification.objects.filter(kind=Kind.REJECTED_LATER).exists(), "the answer said SENT"

    sandbox.advance(60)
    services.sync_instructions(desk)
    symbol = batch.rows.get().symbol
    for person in (users["operations"], users["supervisors"], users["supervisors2"]):
        (row,) = told(person, Kind.REJECTED_LATER)
        assert row.title == (
            f"Clear Street rejected 1 instruction of batch #{batch.pk} on account {desk.number} "
            "after it was sent"
        )
        assert row.detail == f"{symbol}: REJECTED (Position not found at OCC)"
        assert row.url == f"/instructions/batches/{batch.pk}/"
    assert not told(users["operations2"], Kind.REJECTED_LATER), "another maker's batch"

    # The next poll finds nothing new: nobody is told again.
    assert services.sync_instructions(desk) == 0
    assert Notification.objects.filter(kind=Kind.REJECTED_LATER, count=1).count() == 3


def test_a_failed_chain_verification_tells_compliance_and_administrators(users):
    now = timezone.now()
    ChainVerification.objects.create(started_at=now, finished_at=now, ok=True)
    ChainVerification.objects.create(started_at=now, finished_at=None)  # still running
    assert not Notification.objects.exists()
    ChainVerification.objects.create(started_at=now, finished_at=now, ok=False, message="row 7 altered")
    ChainVerification.objects.create(started_at=now, finished_at=now, ok=False, message="row 8 altered")

    for person in (users["compliance"], users["admins"], users["superuser"]):
        (row,) = told(person)
        assert row.kind == Kind.CHAIN and row.url == "/audit/verification/"
        assert row.count == 2 and row.detail == "row 8 altered", "repeats fold into one message"
    assert not told(users["operations"]) and not told(users["supervisors"])


# --- the watcher ------------------------------------------------------------------------------------


def test_a_batch_about_to_expire_unapproved_is_told_once(desk, users, sandbox, settings):
    settings.EXPIRY_WARNING_MINUTES = 30
    batch = submitted(desk, users)
    notifications.watch()
    assert not told(users["supervisors"], Kind.EXPIRING), "hours before its cutoff: nothing yet"

    sandbox.set_clock(market_time="16:10")  # the firm's cutoff is 16:30 ET
    clock.clear_cache()
    notifications.watch()
    notifications.watch()
    for person in (users["operations"], users["operations2"], users["supervisors"]):
        (row,) = told(person, Kind.EXPIRING)
        assert row.title == f"Batch #{batch.pk} expires in 20 min (16:30 ET) unless it is approved and sent"
        assert row.count == 1
    clock.clear_cache()


def test_a_stale_book_and_a_sync_that_keeps_failing_are_told_once(desk, users, settings):
    settings.NOTIFICATIONS_SYNC_FAILURES = 2
    Account.objects.filter(pk=desk.pk).update(snapshot_as_of=timezone.now() - timedelta(days=1))
    for _ in range(2):
        SyncRun.objects.create(account=desk, status=SyncRun.Status.FAILED, finished_at=timezone.now())
    notifications.watch()
    notifications.watch()

    titles = sorted(row.title for row in told(users["supervisors"], Kind.BOOK))
    assert titles == [
        f"The book of account {desk.number} is stale",
        f"The last 2 syncs of account {desk.number} failed",
    ]
    # The link opens the account's page (it is addressed by its number, not by our key).
    assert all(
        row.url == f"/positions/accounts/{desk.number}/" for row in told(users["operations"], Kind.BOOK)
    )
    client = Client()
    client.force_login(users["operations"])
    assert client.get(told(users["operations"], Kind.BOOK)[0].url).status_code == 200
    assert not told(users["compliance"], Kind.BOOK)


# --- folding and preferences -----------------------------------------------------------------------------


def test_repeats_fold_into_one_message_with_a_count(desk, users, settings):
    users["supervisors"].email = "carol@example.com"
    users["supervisors"].save()
    batch = submitted(desk, users)
    itm = option(desk, "AAPL", put_call="C")
    for quantity in (2, 1):  # each edit sends it back to the queue: the checker is told again
        services.update_batch(users["operations"], batch.pk, [RowSpec(itm.pk, "EXERCISE", quantity)])
    (row,) = told(users["supervisors"])
    assert row.count == 3 and row.read_at is None
    assert Job.objects.filter(task="notifications.deliver").count() == 1, "one e-mail, not three"

    row.read_at = timezone.now()
    row.save()
    services.update_batch(users["operations"], batch.pk, [RowSpec(itm.pk, "EXERCISE", 2)])
    assert len(told(users["supervisors"])) == 2, "once read, a repeat is news again"

    settings.NOTIFICATIONS_FOLD_SECONDS = 0
    services.update_batch(users["operations"], batch.pk, [RowSpec(itm.pk, "EXERCISE", 1)])
    assert len(told(users["supervisors"])) == 3, "past the window, a repeat is a new message"


def test_preferences_choose_the_channels(desk, users):
    checker, other, third = users["supervisors"], users["supervisors2"], make_user("sup_jo", "supervisors")
    Desk.objects.get(name="Floor").members.add(third)
    for person, address in ((checker, "carol@example.com"), (other, "dan@example.com")):
        person.email = address
        person.save()
    Preference.objects.create(user=checker, kind=Kind.AWAITING_APPROVAL, in_app=True, email=False)
    Preference.objects.create(user=other, kind=Kind.AWAITING_APPROVAL, in_app=False, email=False)
    Preference.objects.create(user=other, kind=Kind.DECISION, in_app=True, email=True)  # another kind
    submitted(desk, users)

    (row,) = told(checker)
    assert row.in_app and not row.email_wanted
    assert not told(other), "both channels off: not told at all"
    (row,) = told(third)
    assert row.in_app and not row.email_wanted, "e-mail by default, but no address: the application only"
    assert not Job.objects.filter(task="notifications.deliver").exists(), "nobody gets an e-mail"


def test_the_preferences_page_saves_and_the_bell_counts(desk, users):
    checker = users["supervisors"]
    batch = submitted(desk, users)
    client = Client()
    client.force_login(checker)
    page = client.get("/notifications/").content.decode()
    assert 'id="notification-count">1<' in page
    assert f'href="/instructions/batches/{batch.pk}/"' in page

    form = {f"{kind}__in_app": "on" for kind in Kind.values} | {
        f"{kind}__email": "on" for kind in Kind.values
    }
    del form[f"{Kind.DECISION}__email"]
    assert client.post("/notifications/preferences/", form).status_code == 302
    assert Preference.objects.get(user=checker, kind=Kind.DECISION).email is False
    assert Preference.objects.get(user=checker, kind=Kind.AWAITING_APPROVAL).email is True

    (row,) = told(checker)
    assert client.post(f"/notifications/{row.pk}/read/").status_code == 302
    assert 'id="notification-count"' not in client.get("/notifications/").content.decode()


def test_one_reads_only_ones_own(desk, users):
    submitted(desk, users)
    (theirs,) = told(users["supervisors"])
    client = Client()
    client.force_login(users["supervisors2"])
    assert client.post(f"/notifications/{theirs.pk}/read/").status_code == 404
    assert client.post("/notifications/read-all/").status_code == 302
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert all(row.read_at for row in told(users["supervisors2"]))
    assert client.post("/notifications/abc/read/").status_code == 404
    assert client.get("/notifications/read-all/").status_code == 405


# --- delivery, and failures that stay where they happen -------------------------------------------------


def test_an_email_arrives_at_the_smtp_server_with_the_link(desk, users, smtp, settings):
    settings.SITE_URL = "https://backoffice.example"
    users["supervisors"].email = "carol@example.com"
    users["supervisors"].save()
    batch = submitted(desk, users)
    ids = [row.pk for row in Notification.objects.filter(kind=Kind.AWAITING_APPROVAL)]

    assert notifications.deliver(ids) == 1, "the checker without an address gets the bell only"
    (message,) = smtp.wait_for(1)
    assert message["To"] == "carol@example.com"
    assert message["Subject"] == f"[Back-office] Batch #{batch.pk} awaits your approval"
    assert f"https://backoffice.example/instructions/batches/{batch.pk}/" in message.get_payload()
    assert notifications.deliver(ids) == 0, "a redelivered task sends nothing twice"


def test_a_mail_server_that_is_down_breaks_nothing(desk, users, settings, caplog):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", closed_port()
    users["operations"].email = "alice@example.com"
    users["operations"].save()
    batch = submitted(desk, users)
    services.approve_batch(users["supervisors"], batch.pk)
    (decision,) = told(users["operations"], Kind.DECISION)

    with caplog.at_level(logging.WARNING, logger="notifications.services"):
        assert notifications.deliver([decision.pk]) == 0
    assert "notification e-mail not sent" in caplog.text
    decision.refresh_from_db()
    assert decision.emailed_at is None and decision.read_at is None, "still in the application"
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.APPROVED


def test_a_notification_that_cannot_be_written_does_not_fail_the_approval(desk, users, monkeypatch, caplog):
    batch = submitted(desk, users)

    def broken(*args, **kwargs):
        raise RuntimeError("notifications are broken")

    monkeypatch.setattr(notifications.queries, "channels_of", broken)
    with caplog.at_level(logging.ERROR):
        approved = services.approve_batch(users["supervisors"], batch.pk)
    assert approved.status == Batch.Status.APPROVED
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.APPROVED
    assert Job.objects.filter(task="instructions.submit_batch", args=[batch.pk]).exists()
    assert "not written" in caplog.text
    assert not told(users["operations"], Kind.DECISION)


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        _Hook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_the_webhook_gets_slack_json_and_a_dead_one_is_only_logged(desk, users, settings, caplog):
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.SITE_URL = "https://backoffice.example"
    settings.NOTIFICATIONS_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/hook"
    try:
        batch = submitted(desk, users)
        (job,) = Job.objects.filter(task="notifications.post_webhook")
        assert notifications.post_webhook(*job.args) is True
        assert _Hook.received == [
            {
                "text": f"Batch #{batch.pk} awaits your approval https://backoffice.example/instructions/batches/{batch.pk}/"
            }
        ]
    finally:
        server.shutdown()
    settings.NOTIFICATIONS_WEBHOOK_URL = f"http://127.0.0.1:{closed_port()}/hook"
    with caplog.at_level(logging.WARNING, logger="notifications.services"):
        assert notifications.post_webhook("anything") is False
    assert "notification webhook failed" in caplog.text
