"""Who gets into which URL: every routed URL, walked as anonymous and as each role.

Adding a URL without adding it to ``ACCESS`` fails ``test_every_url_has_an_access_rule``, so no page
or endpoint can ship without a decision about who may open it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

ROLES = ("operations", "supervisors", "compliance", "admins", "norole", "superuser")
EVERYONE = frozenset(ROLES)
BOOK = frozenset({"operations", "supervisors", "compliance", "admins", "superuser"})
AUDIT = frozenset({"compliance", "admins", "superuser"})
OPERATE = frozenset({"operations", "supervisors", "admins", "superuser"})
MAKERS = frozenset({"operations", "superuser"})
CHECKERS = frozenset({"supervisors", "superuser"})
MANAGE = frozenset({"admins", "superuser"})


@dataclass(frozen=True)
class Rule:
    allowed: frozenset[str]
    # "login": redirected to the login page; "401": JSON 401; "public": 200; "404": not here at all
    anonymous: str = "login"
    ok_statuses: tuple[int, ...] = (200,)
    method: str = "get"
    sample: Callable[[dict], dict] = field(default=lambda objects: {})


MISSING_ACTION = {
    "method": "post",
    "anonymous": "401",
    "ok_statuses": (404,),
    "sample": lambda objects: {"pk": 999_999_999},
}

ACCESS: dict[str, Rule] = {
    "dashboard": Rule(EVERYONE),
    # 503 is the honest answer while a dependency is down; access is what this test pins.
    "healthz": Rule(EVERYONE, anonymous="401", ok_statuses=(200, 503)),
    "market_clock": Rule(EVERYONE, anonymous="401"),
    # Prometheus's scrape answers its bearer token only, never a session; without METRICS_TOKEN (as
    # here) it is off for everyone (tests/backoffice/test_metrics.py scrapes it with the token).
    "metrics": Rule(frozenset(), anonymous="404"),
    # Probes for the container runtime and the load balancer: no session, no details.
    "livez": Rule(EVERYONE, anonymous="public"),
    "readyz": Rule(EVERYONE, anonymous="public", ok_statuses=(200, 503)),
    # Signed-in people are sent on from the login page; anonymous visitors see it.
    "login": Rule(frozenset(), anonymous="public"),
    "logout": Rule(EVERYONE, method="post", ok_statuses=(302,)),
    # Saved views are each person's own (an unknown one is a message); every answer goes back to a page.
    "saved_views:save": Rule(EVERYONE, method="post", ok_statuses=(302,)),
    "saved_views:apply": Rule(EVERYONE, ok_statuses=(302,)),
    "saved_views:default": Rule(EVERYONE, method="post", ok_statuses=(302,)),
    "saved_views:delete": Rule(EVERYONE, method="post", ok_statuses=(302,)),
    # Compliance pages.
    "audit:list": Rule(AUDIT),
    "audit:export": Rule(AUDIT, sample=lambda o: {"fmt": "xlsx"}),
    "audit:verification": Rule(AUDIT),
    "audit:verify_now": Rule(AUDIT, method="post", ok_statuses=(302,)),
    "audit:detail": Rule(AUDIT, ok_statuses=(200, 404)),
    # Instructions.
    "instructions:batches": Rule(BOOK),
    "instructions:batch_detail": Rule(BOOK, sample=lambda o: {"pk": o["batch"].pk}),
    # Opened without a selection, a maker is sent back to the book with a message.
    "instructions:batch_new": Rule(MAKERS, ok_statuses=(302,)),
    "instructions:batch_edit": Rule(MAKERS, ok_statuses=(200, 302), sample=lambda o: {"pk": o["batch"].pk}),
    "instructions:batch_submit": Rule(
        MAKERS, method="post", ok_statuses=(302,), sample=lambda o: {"pk": o["batch"].pk}
    ),
    "instructions:batch_withdraw": Rule(
        MAKERS, method="post", ok_statuses=(302,), sample=lambda o: {"pk": o["batch"].pk}
    ),
    "instructions:batch_approve": Rule(
        CHECKERS, method="post", ok_statuses=(302,), sample=lambda o: {"pk": o["batch"].pk}
    ),
    "instructions:batch_reject": Rule(
        CHECKERS, method="post", ok_statuses=(302,), sample=lambda o: {"pk": o["batch"].pk}
    ),
    # A retry is a new approval: checkers only.
    "instructions:batch_retry": Rule(
        CHECKERS, method="post", ok_statuses=(302,), sample=lambda o: {"pk": o["batch"].pk}
    ),
    # Anyone who reads the book reaches it; the service says who may acknowledge (a message, 302).
    "instructions:batch_acknowledge": Rule(
        BOOK, method="post", ok_statuses=(302,), sample=lambda o: {"pk": o["batch"].pk}
    ),
    "instructions:cancel_acknowledge": Rule(
        BOOK, method="post", ok_statuses=(302,), sample=lambda o: {"pk": o["cancel"].pk}
    ),
    "instructions:attention": Rule(BOOK),
    "instructions:approvals": Rule(BOOK),
    "instructions:instruction_list": Rule(BOOK),
    "instructions:instruction_detail": Rule(BOOK, sample=lambda o: {"pk": o["instruction"].pk}),
    "instructions:cancel_request": Rule(
        MAKERS, method="post", ok_statuses=(302,), sample=lambda o: {"pk": o["instruction"].pk}
    ),
    "instructions:cancel_detail": Rule(BOOK, sample=lambda o: {"pk": o["cancel"].pk}),
    "instructions:cancel_approve": Rule(
        CHECKERS, method="post", ok_statuses=(302,), sample=lambda o: {"pk": o["cancel"].pk}
    ),
    "instructions:cancel_reject": Rule(
        CHECKERS, method="post", ok_statuses=(302,), sample=lambda o: {"pk": o["cancel"].pk}
    ),
    "instructions:cancel_withdraw": Rule(
        MAKERS, method="post", ok_statuses=(302,), sample=lambda o: {"pk": o["cancel"].pk}
    ),
    "instructions:worksheet": Rule(BOOK),
    # Every list's export: whoever reads the list, in either format.
    **{
        f"instructions:{name}_export": Rule(BOOK, sample=lambda o: {"fmt": "xlsx"})
        for name in ("batches", "batch_rows", "attention", "instructions", "cancels", "worksheet")
    },
    **{
        f"positions:{name}_export": Rule(BOOK, sample=lambda o: {"fmt": "csv"})
        for name in ("book", "closes", "close_orders", "sync_runs")
    },
    # The book and close requests.
    "positions:list": Rule(BOOK),
    "positions:detail": Rule(BOOK, sample=lambda o: {"pk": o["position"].pk}),
    "positions:account_detail": Rule(BOOK, sample=lambda o: {"account_id": o["account"].number}),
    "positions:sync_run_detail": Rule(BOOK, sample=lambda o: {"run_id": o["run"].pk}),
    "positions:sync_status": Rule(BOOK, anonymous="401", sample=lambda o: {}),
    "positions:sync": Rule(OPERATE, method="post", anonymous="401", ok_statuses=(202,)),
    "positions:closes": Rule(BOOK),
    "positions:close_detail": Rule(BOOK, sample=lambda o: {"pk": o["close"].pk}),
    # Posted without a body: a maker gets the form's message (302), others a 403.
    "positions:request_close": Rule(
        MAKERS, method="post", ok_statuses=(302,), sample=lambda o: {"pk": o["position"].pk}
    ),
    "positions:request_close_all": Rule(
        MAKERS, method="post", ok_statuses=(302,), sample=lambda o: {"account_id": o["account"].number}
    ),
    "positions:approve_close": Rule(
        CHECKERS, method="post", ok_statuses=(302,), sample=lambda o: {"pk": o["close"].pk}
    ),
    "positions:reject_close": Rule(
        CHECKERS, method="post", ok_statuses=(302,), sample=lambda o: {"pk": o["close"].pk}
    ),
    "positions:withdraw_close": Rule(
        MAKERS, method="post", ok_statuses=(302,), sample=lambda o: {"pk": o["close"].pk}
    ),
    "positions:close_acknowledge": Rule(
        BOOK, method="post", ok_statuses=(302,), sample=lambda o: {"pk": o["close"].pk}
    ),
    "positions:prices": Rule(BOOK),
    # The REST API: a JSON 401 for anonymous callers. Actions are posted to an id that does not exist:
    # a role that may act gets the service's 404, any other role the view's 403.
    "api:schema": Rule(EVERYONE, anonymous="401"),
    "api:docs": Rule(EVERYONE),
    "api:not_found": Rule(EVERYONE, anonymous="401", ok_statuses=(404,)),
    "api:account-list": Rule(BOOK, anonymous="401"),
    "api:account-detail": Rule(BOOK, anonymous="401", sample=lambda o: {"account_id": o["account"].number}),
    "api:position-list": Rule(BOOK, anonymous="401"),
    "api:position-detail": Rule(BOOK, anonymous="401", sample=lambda o: {"pk": o["position"].pk}),
    "api:order-list": Rule(BOOK, anonymous="401"),
    "api:order-detail": Rule(BOOK, anonymous="401", sample=lambda o: {"pk": o["order"].pk}),
    "api:sync-run-list": Rule(BOOK, anonymous="401"),
    "api:sync-run-detail": Rule(BOOK, anonymous="401", sample=lambda o: {"pk": o["run"].pk}),
    "api:instruction-list": Rule(BOOK, anonymous="401"),
    "api:instruction-detail": Rule(BOOK, anonymous="401", sample=lambda o: {"pk": o["instruction"].pk}),
    "api:batch-list": Rule(BOOK, anonymous="401"),
    "api:batch-detail": Rule(BOOK, anonymous="401", sample=lambda o: {"pk": o["batch"].pk}),
    "api:batch-submit-for-approval": Rule(MAKERS, **MISSING_ACTION),
    "api:batch-withdraw": Rule(MAKERS, **MISSING_ACTION),
    "api:batch-approve": Rule(CHECKERS, **MISSING_ACTION),
    "api:batch-reject": Rule(CHECKERS, **MISSING_ACTION),
    "api:batch-retry": Rule(CHECKERS, **MISSING_ACTION),
    "api:cancel-request-list": Rule(BOOK, anonymous="401"),
    "api:cancel-request-detail": Rule(BOOK, anonymous="401", sample=lambda o: {"pk": o["cancel"].pk}),
    "api:cancel-request-approve": Rule(CHECKERS, **MISSING_ACTION),
    "api:cancel-request-reject": Rule(CHECKERS, **MISSING_ACTION),
    "api:cancel-request-withdraw": Rule(MAKERS, **MISSING_ACTION),
    "api:close-request-list": Rule(BOOK, anonymous="401"),
    "api:close-request-detail": Rule(BOOK, anonymous="401", sample=lambda o: {"pk": o["close"].pk}),
    "api:close-request-approve": Rule(CHECKERS, **MISSING_ACTION),
    "api:close-request-reject": Rule(CHECKERS, **MISSING_ACTION),
    "api:close-request-withdraw": Rule(MAKERS, **MISSING_ACTION),
    "api:audit-entry-list": Rule(AUDIT, anonymous="401"),
    "api:audit-entry-detail": Rule(AUDIT, anonymous="401", ok_statuses=(200, 404)),
    # Notifications: everyone reads and marks their own (another's, or one that is not there: 404).
    "notifications:list": Rule(EVERYONE),
    "notifications:read": Rule(
        EVERYONE, method="post", ok_statuses=(404,), sample=lambda o: {"pk": 999_999_999}
    ),
    "notifications:read_all": Rule(EVERYONE, method="post", ok_statuses=(302,)),
    "notifications:preferences": Rule(EVERYONE, method="post", ok_statuses=(302,)),
    # Signing in, passwords, second factor: everyone for themselves.
    "password_change": Rule(EVERYONE),
    "password_reset": Rule(EVERYONE, anonymous="public"),
    "password_reset_done": Rule(EVERYONE, anonymous="public"),
    "password_reset_confirm": Rule(EVERYONE, anonymous="public"),
    "password_reset_complete": Rule(EVERYONE, anonymous="public"),
    # Single sign-on answers 404 until it is configured (tests/access/test_sso.py signs in through it).
    "oidc_authentication_init": Rule(frozenset(), anonymous="404"),
    "oidc_authentication_callback": Rule(frozenset(), anonymous="404"),
    # Without an authenticator, verifying sends a person to enrol one.
    "access:verify": Rule(EVERYONE, ok_statuses=(302,)),
    "access:mfa_enrol": Rule(EVERYONE),
    # User administration: administrators only. Actions posted without a body are refused with the
    # service's message (302 back to the page).
    "access:users": Rule(MANAGE),
    "access:user_new": Rule(MANAGE),
    "access:user_detail": Rule(MANAGE, sample=lambda o: {"pk": o["person"].pk}),
    **{
        f"access:{name}": Rule(
            MANAGE, method="post", ok_statuses=(302,), sample=lambda o: {"pk": o["person"].pk}
        )
        for name in (
            "user_access",
            "user_deactivate",
            "user_reactivate",
            "user_reset_second_factor",
            "user_password_link",
            "user_token",
        )
    },
    "access:requests": Rule(MANAGE),
    "access:request_detail": Rule(MANAGE, sample=lambda o: {"pk": o["access_request"].pk}),
    **{
        f"access:{name}": Rule(
            MANAGE, method="post", ok_statuses=(302,), sample=lambda o: {"pk": o["access_request"].pk}
        )
        for name in ("request_approve", "request_reject", "request_withdraw", "request_collect")
    },
    "access:lockouts": Rule(MANAGE),
    "access:lockout_lift": Rule(
        MANAGE, method="post", ok_statuses=(302,), sample=lambda o: {"pk": 999_999_999}
    ),
    # Everyone manages their own tokens (an id of someone else's is a 404).
    "api:token-list": Rule(EVERYONE, anonymous="401"),
    "api:token-detail": Rule(
        EVERYONE, anonymous="401", ok_statuses=(404,), sample=lambda o: {"pk": 999_999_999}
    ),
}


def sample_objects(users: dict) -> dict:
    """One of each object the URLs point at, so every parametrised URL can be opened."""
    from django.utils import timezone

    from positions.models import Account, CloseRequest, Order, Position, SyncRun

    account = Account.objects.create(number=424242, name="Access test")
    now = timezone.now()
    position = Position.objects.create(
        account=account,
        instrument_id="access-1",
        symbol="AAPL",
        instrument_type="COMMON_STOCK",
        position_type="LONG",
        quantity=1,
        available_quantity=1,
        market_value=1,
        first_seen_at=now,
        updated_at=now,
    )
    run = SyncRun.objects.create(account=account, status=SyncRun.Status.SUCCEEDED)
    close = CloseRequest.objects.create(account=account, requested_by=users["operations2"])
    from datetime import date

    from instructions.models import Batch, CancelRequest, Instruction

    batch = Batch.objects.create(
        account=account, business_date=date(2026, 4, 24), created_by=users["operations2"]
    )
    instruction = Instruction.objects.create(
        id="access-instruction",
        account=account,
        instruction_id="k-1",
        instruction_type="EXERCISE",
        instrument_id="access-1",
        quantity=1,
        status="ACCEPTED",
    )
    cancel = CancelRequest.objects.create(instruction=instruction, requested_by=users["operations2"])
    order = Order.objects.create(
        id="access-order",
        account=account,
        close_request=close,
        side="SELL",
        quantity=1,
        order_type="MARKET",
        time_in_force="DAY",
        status="NEW",
        filled_quantity=0,
        leaves_quantity=1,
    )
    from backoffice.models import AccessRequest
    from tests.conftest import make_user

    person = make_user("access_sample", email="sample@example.com", is_active=False)
    access_request = AccessRequest.objects.create(
        kind=AccessRequest.Kind.REACTIVATE, subject=person, requested_by=users["operations2"]
    )
    return {
        "users": users,
        "person": person,
        "access_request": access_request,
        "account": account,
        "position": position,
        "run": run,
        "close": close,
        "batch": batch,
        "instruction": instruction,
        "cancel": cancel,
        "order": order,
    }


def walk(patterns, prefix: str = "", namespace: str | None = None) -> Iterator[tuple[str, str]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = ":".join(filter(None, [namespace, pattern.namespace])) or None
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace else str(pattern.name)
            yield name, prefix + str(pattern.pattern)


def project_urls() -> list[tuple[str, str]]:
    return [
        (name, route) for name, route in walk(get_resolver().url_patterns) if not name.startswith("admin:")
    ]


def admin_urls() -> list[tuple[str, str]]:
    return [(name, route) for name, route in walk(get_resolver().url_patterns) if name.startswith("admin:")]


def concrete(route: str, kwargs: dict) -> str:
    """Fill a route's converters and regex groups with the sample values."""

    def fill(match: re.Match) -> str:
        key = match.group("name")
        return str(kwargs.get(key, "1"))

    # Regex groups first: their "(?P<name>...)" would otherwise read as a "<name>" converter.
    path = re.sub(r"\(\?P<(?P<name>\w+)>[^)]*\)", fill, route)
    path = re.sub(r"<(?:\w+:)?(?P<name>\w+)>", fill, path)
    return "/" + path.replace("^", "").replace("$", "")


def test_every_url_has_an_access_rule():
    missing = sorted({name for name, _ in project_urls()} - set(ACCESS))
    assert not missing, f"URLs without an access rule in tests/test_access.py: {missing}"


@pytest.mark.django_db(databases=["default", "audit"])
@pytest.mark.parametrize("role", ("anonymous", *ROLES))
def test_project_urls_by_role(client, users, role):
    objects = sample_objects(users)
    failures = []
    for name, route in project_urls():
        rule = ACCESS.get(name)
        if rule is None:  # reported by test_every_url_has_an_access_rule
            continue
        url = concrete(route, rule.sample(objects))
        if role != "anonymous":
            client.force_login(users[role])
        response = getattr(client, rule.method)(url)
        status = response.status_code
        if role == "anonymous":
            if rule.anonymous == "login":
                ok = status == 302 and response["Location"].startswith("/login/")
            elif rule.anonymous == "401":
                ok = status == 401
            elif rule.anonymous == "404":
                ok = status == 404
            else:
                ok = status in rule.ok_statuses
        elif name == "login":
            ok = status == 302
        elif rule.anonymous == "404":
            ok = status == 404
        elif role in rule.allowed:
            ok = status in rule.ok_statuses
        else:
            ok = status == 403
        if not ok:
            failures.append(f"{rule.method.upper()} {url} ({name}) as {role}: {status}")
        client.logout()
    assert not failures, "\n".join(failures)


@pytest.mark.django_db(databases=["default", "audit"])
@pytest.mark.parametrize("role", ("anonymous", *ROLES))
def test_admin_site_is_for_administrators_only(client, users, role):
    """Everyone but staff is turned away from every admin URL; admins reach what they manage."""
    if role != "anonymous":
        client.force_login(users[role])
    from django.contrib.contenttypes.models import ContentType

    user_type = ContentType.objects.get(app_label="auth", model="user")
    sample = {
        "object_id": users["norole"].pk,
        "id": users["norole"].pk,
        "app_label": "auth",
        "content_type_id": user_type.pk,
    }
    leaked = []
    for name, route in admin_urls():
        if name in {"admin:login", "admin:logout", "admin:None"} or "(?P<url>" in route:
            continue
        url = concrete(route, sample)
        status = client.get(url).status_code
        staff = role in {"admins", "superuser"}
        if not staff and status == 200:
            leaked.append(f"{url} as {role}: {status}")
    assert not leaked, "\n".join(leaked)
    if role in {"admins", "superuser"}:
        assert client.get("/admin/").status_code == 200
        assert client.get("/admin/auth/user/").status_code == 200
        assert client.get("/admin/axes/accessattempt/").status_code == 200


# --- Desks: a user of desk A reaching desk B's objects --------------------------------------------

# Lists, counts and exports that must leave desk B's rows out (its account number must not appear).
DESK_LISTS = (
    "dashboard",
    "positions:list",
    "positions:closes",
    "instructions:batches",
    "instructions:approvals",
    "instructions:instruction_list",
    "instructions:worksheet",
    "api:account-list",
    "api:position-list",
    "api:order-list",
    "api:sync-run-list",
    "api:instruction-list",
    "api:batch-list",
    "api:cancel-request-list",
    "api:close-request-list",
)
# Every list's export, read as CSV (text, so the account number would show).
DESK_EXPORTS = tuple(name for name in ACCESS if name.endswith(":export") or name.endswith("_export"))
# API actions on desk B's objects: the object is not there for a desk A user.
DESK_API_ACTIONS = {
    "api:batch-submit-for-approval": "batch",
    "api:batch-withdraw": "batch",
    "api:batch-approve": "batch",
    "api:batch-reject": "batch",
    "api:batch-retry": "batch",
    "api:cancel-request-approve": "cancel",
    "api:cancel-request-reject": "cancel",
    "api:cancel-request-withdraw": "cancel",
    "api:close-request-approve": "close",
    "api:close-request-reject": "close",
    "api:close-request-withdraw": "close",
}


def two_desks(users: dict) -> tuple[dict, dict]:
    """Desk B owns the sample objects' account; desk A owns another. The floor's users sit on desk A."""
    from positions.models import Account, Desk
    from tests.conftest import make_user

    objects = sample_objects(users)
    desk_b = Desk.objects.create(name="Desk B")
    desk_b.accounts.add(objects["account"])
    desk_a = Desk.objects.create(name="Desk A")
    desk_a.accounts.add(Account.objects.create(number=515151, name="Desk A's book"))
    desk_users = {
        "operations": make_user("ops_desk_a", "operations"),
        "supervisors": make_user("sup_desk_a", "supervisors"),
        "compliance": users["compliance"],
        "admins": users["admins"],
    }
    desk_a.members.add(desk_users["operations"], desk_users["supervisors"])
    return objects, desk_users


def other_desk_reachable(client, objects: dict, role: str) -> list[str]:
    """Every way desk B's objects showed for ``role`` of desk A: answers other than 404 on its
    objects (403 only where the role may not act at all), and its account in lists and exports."""
    found = []
    routes = dict(project_urls())
    number = str(objects["account"].number)
    for name, rule in ACCESS.items():
        if name in DESK_API_ACTIONS:
            kwargs = {"pk": objects[DESK_API_ACTIONS[name]].pk}
        else:
            kwargs = rule.sample(objects)
            if not kwargs or kwargs.get("pk") == 999_999_999 or name.startswith("access:"):
                continue
            if name in DESK_EXPORTS:  # lists, not desk B's objects: read below
                continue
        url = concrete(routes[name], kwargs)
        status = getattr(client, rule.method)(url).status_code
        allowed = role in rule.allowed
        if status != 404 and not (status == 403 and not allowed):
            found.append(f"{rule.method.upper()} {url} ({name}): {status}")
    for name in DESK_LISTS:
        response = client.get(concrete(routes[name], {}))
        if number in response.content.decode():
            found.append(f"GET {routes[name]} ({name}) lists account {number}")
    for name in DESK_EXPORTS:
        response = client.get(concrete(routes[name], {"fmt": "csv"}))
        if response.status_code == 200 and number in b"".join(response.streaming_content).decode():
            found.append(f"GET {routes[name]} ({name}) exports account {number}")
    response = client.post("/positions/sync/", {"account": number})
    if response.status_code == 202:
        found.append(f"POST /positions/sync/ queued a sync of {number}")
    return found


@pytest.mark.django_db(databases=["default", "audit"])
@pytest.mark.parametrize("role", ("operations", "supervisors"))
def test_desk_a_never_reaches_desk_b(client, users, role):
    objects, desk_users = two_desks(users)
    client.force_login(desk_users[role])
    found = other_desk_reachable(client, objects, role)
    assert not found, "\n".join(found)


@pytest.mark.django_db(databases=["default", "audit"])
@pytest.mark.parametrize("role", ("compliance", "admins"))
def test_compliance_and_administrators_see_every_desk(client, users, role):
    objects, desk_users = two_desks(users)
    client.force_login(desk_users[role])
    assert client.get(f"/positions/accounts/{objects['account'].number}/").status_code == 200
    assert client.get(f"/api/v1/accounts/{objects['account'].number}/").status_code == 200
    assert client.get(f"/positions/{objects['position'].pk}/").status_code == 200
