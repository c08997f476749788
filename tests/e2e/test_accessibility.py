"""axe-core on every page, as every role, in a real browser: no serious or critical finding.

The pages are those of ``tests/test_access.py``'s table that a role may open with a GET and that
answer HTML (JSON, CSV and the like are skipped by their content type), filled with the same sample
objects, on the sandbox's synced demo book so the tables have rows. axe-core (bundled by
axe-playwright-python) is injected into the page under test only, never served by the application.
The full findings, minor ones included, are written to ``var/axe/<role>.json`` for a person to read.
"""

from __future__ import annotations

import json
from pathlib import Path

import axe_playwright_python
import pytest

from instructions import services
from instructions.services import RowSpec
from tests.e2e.conftest import login, watched_page
from tests.fixtures.desk import option
from tests.test_access import ACCESS, concrete, project_urls, sample_objects

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases=["default", "audit"])]

AXE = Path(axe_playwright_python.__file__).parent / "axe.min.js"
REPORTS = Path(__file__).resolve().parents[2] / "var" / "axe"
BLOCKING = {"serious", "critical"}
# The desk's roles, and "anonymous" for the pages one reaches signed out (login, password reset).
ROLES = ("anonymous", "operations", "supervisors", "compliance", "admins")


def pages_for(role: str, objects: dict) -> list[str]:
    """The URL of every page ``role`` may open with a GET, as the access table says."""
    routes = dict(project_urls())
    urls = []
    for name, rule in sorted(ACCESS.items()):
        if rule.method != "get" or rule.anonymous == "404":
            continue
        reachable = rule.anonymous == "public" if role == "anonymous" else role in rule.allowed
        if reachable:
            urls.append(concrete(routes[name], rule.sample(objects)))
    return urls


# Swagger UI (``/api/docs/``, a developer's tool, not a desk page) draws its own widgets, whose markup
# (a button nested in a link) and colours are the library's; the page around them is still checked.
THIRD_PARTY = [[".swagger-ui"]]


def findings(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    return page.evaluate(
        "async (exclude) => (await axe.run({include: [['html']], exclude},"
        " {resultTypes: ['violations']})).violations",
        THIRD_PARTY,
    )


@pytest.mark.parametrize("role", ROLES)
def test_every_page_passes_axe(browser, live_server, users, desk, role):
    objects = sample_objects(users)
    # The batch pages show a real batch with rows, awaiting a decision: its maker's edit form and the
    # checker's review with its approve and reject forms.
    rows = [RowSpec(option(desk, "AAPL", put_call="C").pk, "EXERCISE", 1)]
    objects["batch"] = services.create_batch(users["operations"], desk, rows)
    services.submit_for_approval(users["operations"], objects["batch"].pk)
    report: dict[str, list[dict]] = {}
    blocking = []
    # The page's CSP forbids inline scripts, axe's included: the test's own context lets it in.
    with watched_page(
        browser, f"axe-{role}", viewport={"width": 1440, "height": 900}, bypass_csp=True
    ) as page:
        if role != "anonymous":
            login(page, live_server, users[role].username)
        for url in pages_for(role, objects):
            answer = page.request.get(f"{live_server.url}{url}")
            if not answer.headers.get("content-type", "").startswith("text/html"):
                continue
            page.goto(f"{live_server.url}{url}")
            found = findings(page)
            report[url] = found
            blocking += [
                f"{url} as {role}: {v['id']} ({v['impact']}) {v['help']}: "
                + ", ".join(str(node["target"]) for node in v["nodes"][:5])
                for v in found
                if v["impact"] in BLOCKING
            ]
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"{role}.json").write_text(json.dumps(report, indent=1))
    assert report, f"no HTML page was checked as {role}"
    assert not blocking, "\n".join(blocking)


def test_the_keyboard_finds_the_skip_link_and_a_visible_focus(page, live_server, users):
    login(page, live_server, "ops_alice")
    page.goto(f"{live_server.url}/positions/")
    # The first Tab lands on the skip link, shown on screen; following it puts the focus on the page's
    # content, past the navigation.
    page.keyboard.press("Tab")
    skip = page.locator("a.skip-link")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    box = skip.bounding_box()
    assert box is not None and box["y"] >= 0, "the skip link is on screen when it has the focus"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    # The next Tab reaches a control of the page, and it wears a focus ring.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('header')") is None
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none"), f"the focused control has no visible outline ({outline})"
