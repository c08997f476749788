"""The compliance pages: who may read them, filters, paging, detail, CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import uuid
from zoneinfo import ZoneInfo

import pytest
from django.db import connections
from django.template import Context, Template
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backoffice import roles
from backoffice.audit import links, services
from backoffice.audit.models import AuditEntry
from tests.audit.conftest import AUDIT_DBS, call

pytestmark = pytest.mark.django_db(databases=AUDIT_DBS)


def _account() -> int:
    # Audit rows outlive tests (the table is never flushed), so each test works in its own account.
    return random.randint(10**12, 10**15)


def _ids(response) -> list[int]:
    return [entry.pk for entry in response.context["page"].entries]


@pytest.mark.parametrize(
    "url_name,args",
    [("audit:list", []), ("audit:export", []), ("audit:verification", []), ("audit:detail", [None])],
)
@pytest.mark.parametrize(
    "role,expected",
    [
        (roles.COMPLIANCE, 200),
        (roles.ADMINS, 200),
        (roles.OPERATIONS, 403),
        (roles.SUPERVISORS, 403),
        (None, 403),
    ],
)
def test_only_compliance_and_admins_read_the_audit(client_for, role, expected, url_name, args) -> None:
    args = [call().pk if arg is None else arg for arg in args]
    response = client_for(role).get(reverse(url_name, args=args))
    assert response.status_code == expected


def test_anonymous_is_sent_to_login(client) -> None:
    for url in (reverse("audit:list"), reverse("audit:export"), reverse("audit:detail", args=[1])):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert client.post(reverse("audit:verify_now")).status_code == 302


def test_nav_link_only_for_audit_readers(client_for) -> None:
    assert b'href="/audit/"' in client_for(roles.COMPLIANCE).get("/").content
    assert b'href="/audit/"' not in client_for(roles.OPERATIONS).get("/").content


@pytest.fixture
def scenario(make_user):
    """Four rows in one fresh account, each distinguishable by exactly one filter."""
    account = _account()
    maker, checker = make_user("operations"), make_user("supervisors")
    batch, cancel = uuid.uuid4().hex, uuid.uuid4().hex
    rows = {
        "ok": call(account_id=account, actor=maker, subject_type="batch", subject_id=batch),
        "rejected": call(
            method="POST",
            path=f"/v1/accounts/{account}/positions/instructions",
            status_code=400,
            account_id=account,
            actor=checker,
            subject_type="cancel_request",
            subject_id=cancel,
        ),
        "timeout": call(
            status_code=None, response_body=None, error_class="ReadTimeout", account_id=account, actor=maker
        ),
        "broken": call(status_code=503, account_id=account, actor=maker),
        "decision": services.record_decision(
            action="approved", actor=checker, subject_type="batch", subject_id=batch, account_id=account
        ),
    }
    return {
        "account": account,
        "maker": maker,
        "checker": checker,
        "batch": batch,
        "cancel": cancel,
        "rows": rows,
    }


def test_each_filter_narrows(compliance_client, scenario) -> None:
    rows, account = scenario["rows"], scenario["account"]
    today = timezone.now().astimezone(ZoneInfo("America/New_York")).date()

    def listed(**params) -> set[str]:
        response = compliance_client.get(reverse("audit:list"), {"account": account, **params})
        assert response.status_code == 200
        by_pk = {row.pk: name for name, row in rows.items()}
        return {by_pk[pk] for pk in _ids(response)}

    assert listed() == set(rows)
    assert listed(user=scenario["checker"].username) == {"rejected", "decision"}
    assert listed(endpoint="/v1/accounts/{account_id}/positions/instructions") == {"rejected"}
    assert listed(path=f"/v1/accounts/{account}/positions/instr") == {"rejected"}
    assert listed(method="POST") == {"rejected"}
    assert listed(status="2xx") == {"ok"}
    assert listed(status="4xx") == {"rejected"}
    assert listed(status="5xx") == {"broken"}
    assert listed(status="none") == {"timeout"}
    assert listed(request_id=rows["broken"].request_id) == {"broken"}
    assert listed(subject_type="batch", subject_id=scenario["batch"]) == {"ok", "decision"}
    assert listed(subject_type="cancel_request") == {"rejected"}
    assert listed(kind="decision") == {"decision"}
    assert listed(date_from=today.isoformat(), date_to=today.isoformat()) == set(rows)
    assert listed(date_from=(today + dt.timedelta(days=1)).isoformat()) == set()
    assert listed(date_to=(today - dt.timedelta(days=1)).isoformat()) == set()
    # Without the account filter, the exact request id still finds its one row.
    response = compliance_client.get(reverse("audit:list"), {"request_id": rows["ok"].request_id})
    assert _ids(response) == [rows["ok"].pk]


@pytest.mark.parametrize(
    "params",
    [
        {"date_from": "not-a-date"},
        {"date_from": "2025-02-30"},
        {"date_from": "0001-01-01"},
        {"date_to": "9999-12-31"},
        {"date_from": "2025-03-02", "date_to": "2025-03-01"},
        {"account": "abc"},
        {"account": "99999999999999999999999"},
        {"status": "7xx"},
        {"per_page": "0"},
        {"per_page": "100000"},
        {"after": "garbage"},
        {"before": "!!!"},
        {"subject_id": "12"},
        {"request_id": "x" * 500},
    ],
)
def test_bad_filters_get_a_message_not_a_500(compliance_client, params) -> None:
    response = compliance_client.get(reverse("audit:list"), params)
    assert response.status_code == 400
    assert b"Fix the filters" in response.content
    assert compliance_client.get(reverse("audit:export"), params).status_code == 400


def test_keyset_pages_forward_and_back(compliance_client) -> None:
    account = _account()
    made = [call(account_id=account).pk for _ in range(7)]
    newest_first = list(reversed(made))
    url = reverse("audit:list")

    page1 = compliance_client.get(url, {"account": account, "per_page": 3})
    assert _ids(page1) == newest_first[:3] and page1.context["page"].prev_cursor is None
    page2 = compliance_client.get(
        url, {"account": account, "per_page": 3, "after": page1.context["page"].next_cursor}
    )
    assert _ids(page2) == newest_first[3:6]
    page3 = compliance_client.get(
        url, {"account": account, "per_page": 3, "after": page2.context["page"].next_cursor}
    )
    assert _ids(page3) == newest_first[6:] and page3.context["page"].next_cursor is None
    back = compliance_client.get(
        url, {"account": account, "per_page": 3, "before": page3.context["page"].prev_cursor}
    )
    assert _ids(back) == newest_first[3:6]
    first = compliance_client.get(
        url, {"account": account, "per_page": 3, "before": back.context["page"].prev_cursor}
    )
    assert _ids(first) == newest_first[:3] and first.context["page"].prev_cursor is None
    assert b"after=" in page1.content and b"before=" in page2.content


def _queries_for(client, params) -> int:
    with (
        CaptureQueriesContext(connections["default"]) as default,
        CaptureQueriesContext(connections["audit"]) as audit,
    ):
        assert client.get(reverse("audit:list"), params).status_code == 200
    assert not any("count(" in q["sql"].lower() for q in audit.captured_queries)
    return len(default) + len(audit)


def test_constant_number_of_queries_per_page(compliance_client) -> None:
    account = _account()
    for _ in range(60):
        call(account_id=account)
    compliance_client.get(reverse("audit:list"))  # warm caches (content types, session)
    small = _queries_for(compliance_client, {"account": account, "per_page": 5})
    large = _queries_for(compliance_client, {"account": account, "per_page": 50})
    unfiltered = _queries_for(compliance_client, {"per_page": 200})
    assert small == large == unfiltered


def test_detail_pretty_prints_and_escapes(compliance_client, monkeypatch) -> None:
    entry = call(
        request_body={"b": 1, "a": "<script>alert(1)</script>"},
        response_body={"data": [{"status": "ACCEPTED"}]},
        subject_type="batch",
        subject_id="77",
        account_id=3,
    )
    monkeypatch.setitem(links.SUBJECT_URLS, "batch", "audit:detail")  # any url taking one argument
    monkeypatch.setitem(links.SUBJECT_URLS, "account", "no_such_url_yet")
    content = compliance_client.get(reverse("audit:detail", args=[entry.pk])).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content and "<script>alert" not in content
    assert "{\n  &quot;a&quot;: " in content  # indented, keys sorted
    assert (
        '<pre tabindex="0">{\n  &quot;data&quot;: [\n    {\n      &quot;status&quot;: &quot;ACCEPTED&quot;'
        in content
    )
    assert f'href="{reverse("audit:detail", args=["77"])}"' in content
    assert entry.hash in content and entry.request_id in content


def test_detail_of_missing_row_is_404(compliance_client) -> None:
    assert compliance_client.get(reverse("audit:detail", args=[10**15])).status_code == 404


def test_csv_export_streams_the_filtered_set(compliance_client) -> None:
    account = _account()
    made = [call(account_id=account, error_message="=HYPERLINK(1)" if i == 0 else None) for i in range(3)]
    call(account_id=account + 1)  # another account: not exported
    response = compliance_client.get(reverse("audit:export"), {"account": account})
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    reader = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    exported = list(reader)
    assert [int(row["id"]) for row in exported] == [entry.pk for entry in reversed(made)]
    last = exported[-1]
    assert last["request_id"] == made[0].request_id and last["error_message"] == "'=HYPERLINK(1)"
    assert last["response_body"] == '{"data": []}' and last["hash"] == made[0].hash


def test_verify_now_queues_the_task(compliance_client, monkeypatch) -> None:
    from backoffice.audit import tasks

    queued = []
    monkeypatch.setattr(tasks.verify_chain, "delay", lambda **kwargs: queued.append(kwargs))
    response = compliance_client.post(reverse("audit:verify_now"))
    assert response.status_code == 302 and response.url == reverse("audit:verification")
    assert queued and queued[0]["trigger"] == "manual"


def test_object_pages_show_their_rows(make_user) -> None:
    subject = uuid.uuid4().hex
    account = _account()
    mine = call(subject_type="close_request", subject_id=subject, account_id=account)
    call(subject_type="close_request", subject_id=uuid.uuid4().hex)
    template = Template(
        "{% load audit_tags %}{% audit_entries_for 'close_request' subject %}"
        "{% audit_entries_for_account account %}"
    )
    html = template.render(Context({"subject": subject, "account": account, "can": {"audit": False}}))
    assert html.count(mine.request_id) == 2
    assert reverse("audit:detail", args=[mine.pk]) not in html  # operations cannot open the detail


def test_admin_is_read_only(make_user, client) -> None:
    admin_user = make_user(None, is_staff=True, is_superuser=True)
    entry = call()
    client.force_login(admin_user)
    assert client.get(reverse("admin:audit_auditentry_changelist")).status_code == 200
    assert client.get(reverse("admin:audit_auditentry_change", args=[entry.pk])).status_code == 200
    assert client.get(reverse("admin:audit_auditentry_add")).status_code == 403
    assert client.get(reverse("admin:audit_auditentry_delete", args=[entry.pk])).status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_the_chain_pill_shows_a_failed_verification_on_the_next_page(compliance_client):
    from backoffice.audit.models import ChainVerification

    now = timezone.now()
    ChainVerification.objects.create(started_at=now, finished_at=now, ok=True, rows_checked=5, message="ok")
    assert "chain OK · 5 rows" in compliance_client.get(reverse("audit:list")).content.decode()
    # Read through a short cache; a run that saves clears it, so the failure shows at once.
    later = now + dt.timedelta(seconds=1)
    ChainVerification.objects.create(started_at=later, finished_at=later, ok=False, message="row 3 altered")
    assert "chain FAILED" in compliance_client.get(reverse("audit:list")).content.decode()
