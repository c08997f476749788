"""The read replica's router: pages read the desk's mirrors from the replica; writes, transactions,
decisions, locks and the audit chain's head stay on the primary; nothing changes when it is unset.

The replica here is a real second connection to the test database under the replica's alias (what
``TEST: {"MIRROR": "default"}`` gives a run with ``DATABASE_REPLICA_URL`` set).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connections, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from backoffice import dbrouter, locks
from backoffice.audit.models import AUDIT_DB, AuditEntry
from backoffice.models import AccessRequest, Job
from instructions.models import Batch, BatchRow, CancelRequest, Instruction, StatusChange
from positions.models import Account, CloseRequest, Order, Position

BASE_DIR = Path(__file__).resolve().parents[2]
REPLICA = "replica"


# Declared as settings declare it for DATABASE_REPLICA_URL, before the run sets up its database: the
# alias then reads the test database through a connection of its own, and the run never flushes it.
django_settings.DATABASES.setdefault(
    REPLICA, {**django_settings.DATABASES["default"], "TEST": {"MIRROR": "default"}}
)

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "audit", REPLICA])


@pytest.fixture
def replica(settings) -> str:
    """The switch on: the router and the middleware, with reads allowed to the replica's alias."""
    settings.DATABASE_REPLICA_ALIAS = REPLICA
    settings.DATABASE_ROUTERS = ["backoffice.dbrouter.PrimaryReplicaRouter"]
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(
        middleware.index("axes.middleware.AxesMiddleware"), "backoffice.dbrouter.ReplicaReadsMiddleware"
    )
    settings.MIDDLEWARE = middleware
    return REPLICA


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def tables_read(queries: CaptureQueriesContext) -> str:
    return " ".join(
        q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")
    )


def test_a_page_reads_the_books_and_the_audit_list_from_the_replica(replica, users):
    Account.objects.create(number=700_001, name="Replica Fund")
    client = signed_in(users["compliance"])
    with (
        CaptureQueriesContext(connections[replica]) as on_replica,
        CaptureQueriesContext(connections["default"]) as on_primary,
    ):
        book = client.get(reverse("positions:list"))
        audit = client.get(reverse("audit:list"))
    assert book.status_code == 200 and audit.status_code == 200
    assert b"700001" in book.content  # the account, as the replica's connection read it
    replica_sql, primary_sql = tables_read(on_replica), tables_read(on_primary)
    assert '"positions_account"' in replica_sql
    assert '"audit_entry"' in replica_sql
    # Who is asking, and may they: always the primary.
    assert '"django_session"' in primary_sql and '"auth_user"' in primary_sql
    assert '"django_session"' not in replica_sql and '"auth_user"' not in replica_sql


def test_writes_and_reads_inside_a_transaction_go_to_the_primary(replica):
    with dbrouter.replica_reads():
        assert Account.objects.all().db == replica
        with transaction.atomic():
            assert Account.objects.all().db == "default"
        assert Account.objects.all().db == replica
        account = Account.objects.create(number=700_002)
        assert account._state.db == "default"
        # Once this request wrote, it reads what it wrote.
        assert Account.objects.all().db == "default"
    assert Account.objects.all().db == "default"  # outside a page (workers, beat, commands)


def test_decisions_locks_and_the_audit_chain_read_the_primary(replica):
    with dbrouter.replica_reads():
        for decided in (Batch, BatchRow, CancelRequest, CloseRequest, Order, AccessRequest, Job):
            assert decided.objects.all().db == "default", decided.__name__
        for mirrored in (Position, Instruction, StatusChange):
            assert mirrored.objects.all().db == replica, mirrored.__name__
        with locks.exclusive("replica-test", 1) as taken:
            assert taken
            assert Position.objects.all().db == "default"
        with dbrouter.primary():
            assert Position.objects.all().db == "default"
        # The chain's head and verification name the audit connection (the primary) themselves.
        assert AuditEntry.objects.order_by("-id").db == AUDIT_DB


def test_after_a_form_the_browsers_pages_read_the_primary(replica, users):
    client = signed_in(users["compliance"])
    posted = client.post(reverse("audit:list"))  # any form; this one answers 405
    assert posted.cookies[dbrouter.PIN_COOKIE]["max-age"] == 10
    with CaptureQueriesContext(connections[replica]) as on_replica:
        assert client.get(reverse("audit:list")).status_code == 200
    assert '"audit_entry"' not in tables_read(on_replica)


def test_the_replica_is_never_migrated(replica):
    router = dbrouter.PrimaryReplicaRouter()
    assert router.allow_migrate(replica, "positions") is False
    assert router.allow_migrate("default", "positions") is None


@pytest.mark.parametrize("replica_url", ["", "postgresql://backoffice_app@replica.invalid:5432/backoffice"])
def test_settings_switch_the_replica_on_only_when_its_url_is_set(replica_url):
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": "postgresql://backoffice_app@primary.invalid:5432/backoffice",
        "REDIS_URL": "redis://127.0.0.1:9/0",
        "DATABASE_REPLICA_URL": replica_url,
    }
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; print(json.dumps("
        "{'aliases': sorted(s.DATABASES), 'routers': s.DATABASE_ROUTERS,"
        " 'host': s.DATABASES.get('replica', {}).get('HOST'),"
        " 'middleware': 'backoffice.dbrouter.ReplicaReadsMiddleware' in s.MIDDLEWARE}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": "backoffice.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    if replica_url:
        assert seen == {
            "aliases": ["audit", "default", "replica"],
            "routers": ["backoffice.dbrouter.PrimaryReplicaRouter"],
            "host": "replica.invalid",
            "middleware": True,
        }
    else:
        assert seen == {"aliases": ["audit", "default"], "routers": [], "host": None, "middleware": False}


def test_readiness_asks_the_replica_and_a_replica_that_does_not_answer_makes_the_web_unready(
    replica, users, sandbox, settings
):
    settings.CLEAR_STREET_BASE_URL = sandbox.base_url
    every = {"database": True, "broker": True, "upstream": True}
    ready = Client().get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {**every, "replica": True}
    health = signed_in(users["admins"]).get("/healthz").json()["checks"]["replica"]
    assert health["ok"] and health["detail"] == "answers (not a standby: nothing to replay)"

    # The replica's server stops answering: the pages would fail on it, so the process is not ready.
    connection = connections[replica]
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT="9")  # nothing listens on port 9
    try:
        unready = Client().get("/readyz")
        assert unready.status_code == 503
        assert unready.json() == {"status": "unavailable", "checks": {**every, "replica": False}}
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


def test_without_a_replica_readiness_does_not_name_one(sandbox, settings):
    settings.CLEAR_STREET_BASE_URL = sandbox.base_url
    ready = Client().get("/readyz")
    assert ready.status_code == 200 and "replica" not in ready.json()["checks"], ready.json()
