"""Hostile query strings on every page and list endpoint: never a 500, never a traceback.

Each routed GET URL (from ``tests/test_access.py``'s table) is opened by a role allowed to read it,
with query strings built from the parameters the pages and the API read, given values a person or a
script might send: numbers out of range, dates that are not dates, very long text, odd Unicode, the
same parameter twice. Whatever the page decides, a 400, a message or an empty list, it must answer.
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
QUERY = st.lists(st.tuples(st.sampled_from(PARAMETERS), VALUES), max_size=6)

# The role that reads each GET URL (the first role in ROLES the access table allows).
PAGES = sorted(
    (name, next(role for role in ROLES if role in rule.allowed))
    for name, rule in ACCESS.items()
    if rule.method == "get" and rule.allowed and rule.anonymous != "404"
)


@pytest.mark.django_db(databases=["default", "audit"])
@pytest.mark.parametrize(("name", "role"), PAGES, ids=[name for name, _ in PAGES])
def test_hostile_query_strings_never_break_a_page(client, users, name, role):
    objects = sample_objects(users)
    route = dict(project_urls())[name]
    url = concrete(route, ACCESS[name].sample(objects))
    client.force_login(users[role])

    @settings(
        max_examples=12,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(query=QUERY)
    def opens(query: list[tuple[str, str]]) -> None:
        data: dict[str, list[str]] = {}
        for key, value in query:
            data.setdefault(key, []).append(value)
        response = client.get(url, data)
        body = response.content.decode("utf-8", "replace") if not response.streaming else ""
        # The health check answers 503 while a dependency is down; that is its message, not a crash.
        honest = response.status_code < 500 or (name == "healthz" and response.status_code == 503)
        assert honest, f"{url}?{query}: {response.status_code}"
        assert "Traceback" not in body, f"{url}?{query} shows a traceback"

    opens()
