"""Hostile query strings on every page and list endpoint, and hostile bodies posted to every form and
action: never a 500, never a traceback.

Each routed GET URL (from ``tests/test_access.py``'s table) is opened by a role allowed to read it,
with query strings built from the parameters the pages and the API read, given values a person or a
script might send: numbers out of range, dates that are not dates, very long text, odd Unicode, the
same parameter twice. Whatever the page decides, a 400, a message or an empty list, it must answer.
Forms get the same treatment: every field any form of the project declares (and the batch form's
rows), posted as a role allowed to post there.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_access import ACCESS, ROLES, concrete, project_urls, sample_objects

# Every query parameter a page, a form or an API filter reads.
PARAMETERS = [
    "account",
    "after",
    "batch",
    "before",
    "close",
    "close_request",
    "code",
    "cursor",
    "date_from",
    "date_to",
    "day",
    "dir",
    "endpoint",
    "expiry_from",
    "expiry_to",
    "instruction",
    "instrument_id",
    "instrument_type",
    "kind",
    "live",
    "method",
    "month",
    "next_expiration",
    "p",
    "page",
    "page_size",
    "part",
    "path",
    "per_page",
    "position",
    "position_type",
    "q",
    "redraft",
    "request_id",
    "runs",
    "scope",
    "sort",
    "state",
    "status",
    "subject_id",
    "subject_type",
    "term",
    "type",
    "underlying",
    "user",
    "week",
    "year",
]

VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            "0",
            "-1",
            "1e999",
            "99999999999999999999999",
            "2026-02-30",
            "2026-13-01",
            "9999-12-31",
            "NaN",
            "Infinity",
            "on",
            "open",
            "all",
            "head",
            "rows",
            "live",
            "queue",
            "AAPL",
            "EXERCISE",
            "MARKET_VALUE",
            "desc",
            "%",
            "' OR 1=1 --",
            "<script>",
            "x" * 5000,
            "eyJub3QiOiAiYSBjdXJzb3IifQ",
        ]
    ),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)


def inputs(names: list[str]) -> st.SearchStrategy[dict[str, list[str]]]:
    """Any subset of ``names``, each given one value or, now and then, two (the same name twice)."""
    return st.fixed_dictionaries(
        {}, optional={name: st.lists(VALUES, min_size=1, max_size=2) for name in names}
    )


QUERY = inputs(PARAMETERS)


def form_fields() -> list[str]:
    """Every field name the project's forms declare, and the batch form's management and row fields."""
    from django import forms

    import access.forms
    import backoffice.audit.forms
    import instructions.forms
    import positions.forms
    from notifications.forms import PreferencesForm

    names = {"reason", "note", "code", "password", "csrfmiddlewaretoken"}
    for module in (access.forms, backoffice.audit.forms, instructions.forms, positions.forms):
        for item in vars(module).values():
            if isinstance(item, type) and issubclass(item, forms.BaseForm) and hasattr(item, "base_fields"):
                names.update(item.base_fields)
    rows = {"rows-TOTAL_FORMS", "rows-INITIAL_FORMS", "rows-MAX_NUM_FORMS"}
    rows |= {f"rows-{n}-{field}" for n in (0, 1) for field in instructions.forms.BatchRowForm.base_fields}
    # A form whose fields are made per kind of notification.
    names.update(PreferencesForm(current={}).fields)
    return sorted(names | rows)


PROBES = {"healthz", "readyz"}

# The role that reads each GET URL (the first role in ROLES the access table allows).
PAGES = sorted(
    (name, next(role for role in ROLES if role in rule.allowed))
    for name, rule in ACCESS.items()
    if rule.method == "get" and rule.allowed and rule.anonymous != "404"
)


# The role that posts to each page and action (the first role in ROLES the access table allows):
# actions, and pages that are forms (the batch form, prices, user administration, passwords); a page
# that takes no POST answers 405. The API is left to schemathesis, which drives it from its schema.
ACTIONS = sorted(
    (name, next(role for role in ROLES if role in rule.allowed))
    for name, rule in ACCESS.items()
    if rule.allowed and rule.anonymous != "404" and not name.startswith("api:")
)


def drive(
    client, users, name: str, role: str, method: str, inputs_: st.SearchStrategy, examples: int
) -> None:
    """Open ``name`` as ``role`` with generated inputs (a query string for GET, a body for POST):
    never a 5xx (but a probe's honest 503), never a traceback."""
    url = concrete(dict(project_urls())[name], ACCESS[name].sample(sample_objects(users)))
    client.force_login(users[role])

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=inputs_)
    def answers(data: dict[str, list[str]]) -> None:
        response = getattr(client, method)(url, data)
        body = response.content.decode("utf-8", "replace") if not response.streaming else ""
        # The health checks answer 503 while a dependency is down; that is their message, not a crash.
        honest = response.status_code < 500 or (name in PROBES and response.status_code == 503)
        assert honest, f"{method.upper()} {url} {data}: {response.status_code}"
        assert "Traceback" not in body, f"{method.upper()} {url} {data} shows a traceback"

    answers()


@pytest.mark.django_db(databases=["default", "audit"])
@pytest.mark.parametrize(("name", "role"), PAGES, ids=[name for name, _ in PAGES])
def test_hostile_query_strings_never_break_a_page(client, users, name, role):
    drive(client, users, name, role, "get", QUERY, examples=12)


@pytest.mark.django_db(databases=["default", "audit"])
@pytest.mark.parametrize(("name", "role"), ACTIONS, ids=[name for name, _ in ACTIONS])
def test_hostile_form_bodies_never_break_an_action(client, users, name, role):
    drive(client, users, name, role, "post", inputs(form_fields()), examples=8)
