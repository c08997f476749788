"""The audit tables' rows, built in Python for speed, say what the template said."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from backoffice.audit.forms import AuditFilterForm
from backoffice.audit.templatetags.audit_tags import (
    audit_filter_fields,
    audit_list_rows,
    audit_status,
    market_second,
    whole_ms,
    widget_html,
)


def call(**fields) -> SimpleNamespace:
    row = {
        "pk": 7,
        "kind": "call",
        "occurred_at": datetime(2026, 4, 24, 14, 30, 5, tzinfo=UTC),
        "method": "POST",
        "path": "/v1/accounts/1/positions/instructions?x=<b>",
        "status_code": 207,
        "error_class": None,
        "error_message": None,
        "request_id": "req-1",
        "duration_ms": 12.5,
        "attempt": 2,
        "actor_username": "ann",
        "approver_username": "",
        "account_id": 100001,
        "subject_type": "batch",
        "subject_id": "3",
        "action": "",
        "from_state": "",
        "to_state": "",
    }
    row.update(fields)
    return SimpleNamespace(**row)


def test_a_call_row_shows_new_york_time_its_answer_rounded_milliseconds_and_its_link():
    html = audit_list_rows([call()])
    assert '<td class="mono nowrap">2026-04-24 10:30:05</td>' in html  # 14:30 UTC is 10:30 ET in April
    assert '<span class="pill ok">207</span>' in html
    assert '<td class="num">13</td>' in html  # half up, as floatformat:0 rounds
    assert 'href="/audit/7/"' in html and "batch:3" in html
    assert "&lt;b&gt;" in html and "<b>" not in html  # upstream text is escaped


def test_answers_by_class_and_a_call_without_one():
    assert 'pill warn">404' in audit_status(call(status_code=404))
    assert 'pill bad">503' in audit_status(call(status_code=503))
    missing = audit_status(call(status_code=None, error_class="ReadTimeout", error_message="timed out"))
    assert missing == '<span class="pill bad" title="timed out">ReadTimeout</span>'
    assert audit_status(call(kind="decision")) == ""
    assert whole_ms(None) == "" and whole_ms(0.4) == "0" and market_second(None) == ""


def test_a_decision_row_shows_its_transition_and_an_empty_page_says_so():
    html = audit_list_rows([call(kind="decision", action="approved", from_state="PENDING", to_state="")])
    assert 'approved <span class="muted">PENDING → ·</span>' in html and "pill info" in html
    assert "No audit entries match these filters." in audit_list_rows([])


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"account": "x", "status": "4xx", "user": 'a<b"', "per_page": "100", "date_from": "2026-01-01"},
        {"endpoint": "/v1/accounts/{account_id}/positions", "method": "POST", "kind": "decision"},
        {"subject_id": "7", "date_from": "2026-02-02", "date_to": "2026-01-01", "per_page": "9999"},
    ],
)
def test_the_filter_widgets_built_here_are_the_markup_djangos_templates_render(data):
    form = AuditFilterForm(data)
    form.is_valid()
    for field in form.visible_fields():
        django_html = re.sub(r">\s+<", "><", str(field))
        assert widget_html(field) == django_html, field.name


def test_a_field_error_is_the_element_its_input_names_in_aria_describedby():
    form = AuditFilterForm({"account": "not a number"})
    assert not form.is_valid()
    html = audit_filter_fields(form)
    assert 'aria-invalid="true" aria-describedby="id_account_error"' in html
    assert '<p class="field-error" id="id_account_error">Enter a whole number.</p>' in html
