from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from backoffice import roles
from backoffice.audit import services
from backoffice.audit.context import CONTEXT_KEYS, audit_context
from backoffice.audit.models import AuditEntry
from tests import dbroles

AUDIT_DBS = ["default", "audit"]


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    def make(role: str | None, *, username: str | None = None, **extra: Any) -> User:
        user = User.objects.create_user(
            username=username or f"{role or 'norole'}-{uuid.uuid4().hex[:8]}", password="x" * 16, **extra
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def client_for(make_user: Callable[..., User]) -> Callable[[str | None], Client]:
    def login(role: str | None) -> Client:
        client = Client()
        client.force_login(make_user(role))
        return client

    return login


@pytest.fixture
def compliance_client(client_for: Callable[[str | None], Client]) -> Client:
    return client_for(roles.COMPLIANCE)


REQUEST_FIELDS = ("method", "path", "query", "request_headers", "request_body", "attempt", "account_id")


def call(**overrides: Any) -> AuditEntry:
    """One upstream call with a unique request_id, unless the test names its own values.

    Attribution (actor, approver, subject...) is given the way the client's callers give it: in an
    audit context around the call, which wins over any context the test itself opened.
    """
    values: dict[str, Any] = {
        "method": "GET",
        "path": "/v1/accounts/100/positions",
        "query": {"page_size": 50},
        "request_headers": {"Accept": "application/json"},
        "request_body": None,
        "attempt": 1,
        "status_code": 200,
        "response_body": {"data": []},
        "response_text": None,
        "request_id": f"req-{uuid.uuid4()}",
        "duration_ms": 12.5,
        "error_class": None,
        "error_message": None,
    }
    attribution = {key: overrides.pop(key) for key in list(overrides) if key in CONTEXT_KEYS}
    values.update(overrides)
    request = services.CallRequest(**{name: values.pop(name) for name in REQUEST_FIELDS if name in values})
    with audit_context(**attribution):
        return services.record_upstream_call(request, **values)


class Tamper:
    """What someone holding the database as its owner can do: switch the audit's triggers off, write,
    and switch them on again. The first write keeps a copy of the test's rows, put back afterwards."""

    def __init__(self, baseline: int) -> None:
        self.baseline = baseline
        self.snapshot = f"audit_snapshot_{uuid.uuid4().hex[:12]}"
        self.taken = False

    def sql(self, statement: str, params: list[Any] | None = None) -> None:
        with dbroles.owner_connection() as conn, conn.transaction():
            if not self.taken:
                conn.execute(
                    f"CREATE TABLE {self.snapshot} AS SELECT * FROM audit_entry WHERE id >= %s",
                    [self.baseline],
                )
                self.taken = True
            conn.execute("ALTER TABLE audit_entry DISABLE TRIGGER USER")
            conn.execute(statement, params)
            conn.execute("ALTER TABLE audit_entry ENABLE TRIGGER USER")

    def restore(self) -> None:
        if not self.taken:
            return
        with dbroles.owner_connection() as conn, conn.transaction():
            conn.execute("ALTER TABLE audit_entry DISABLE TRIGGER USER")
            conn.execute("DELETE FROM audit_entry WHERE id >= %s", [self.baseline])
            conn.execute(f"INSERT INTO audit_entry SELECT * FROM {self.snapshot} ORDER BY id")
            conn.execute("ALTER TABLE audit_entry ENABLE TRIGGER USER")
            conn.execute(f"DROP TABLE {self.snapshot}")


@pytest.fixture
def tamper() -> Iterator[Tamper]:
    """Tamper with the rows the test writes from now on; the chain is whole again after the test.

    For tests marked ``django_db(transaction=True, databases=AUDIT_DBS)``: a test's own transaction
    would hold the locks the owner's ALTER TABLE waits for."""
    head = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    tampering = Tamper(head + 1)
    yield tampering
    tampering.restore()
    assert services.verify_chain().ok
