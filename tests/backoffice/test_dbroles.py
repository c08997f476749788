"""The two database roles: the suite itself runs as the application role, which owns nothing, is no
superuser, and can neither rewrite the audit nor switch off what guards it."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connections, transaction

from backoffice import dbroles as grants
from tests import dbroles
from tests.audit.conftest import AUDIT_DBS, call

# Everything an application role would need to rewrite the audit, and what PostgreSQL answers.
REFUSED = [
    ("UPDATE audit_entry SET status_code = 500", "permission denied for table audit_entry"),
    ("DELETE FROM audit_entry", "permission denied for table audit_entry"),
    ("TRUNCATE audit_entry", "permission denied for table audit_entry"),
    ("ALTER TABLE audit_entry DISABLE TRIGGER USER", "must be owner of table audit_entry"),
    (
        "ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_no_update_delete",
        "must be owner of table audit_entry",
    ),
    (
        "SET session_replication_role = replica",
        'permission denied to set parameter "session_replication_role"',
    ),
    ("DROP TABLE audit_entry", "must be owner of table audit_entry"),
    ("DROP FUNCTION audit_entry_append_only() CASCADE", "must be owner of function audit_entry_append_only"),
    ("ALTER TABLE audit_entry OWNER TO CURRENT_USER", "must be owner of table audit_entry"),
    ("SELECT setval(pg_get_serial_sequence('audit_entry', 'id'), 1000)", "permission denied for sequence"),
]


@pytest.mark.django_db(databases=AUDIT_DBS)
@pytest.mark.parametrize(("statement", "refusal"), REFUSED, ids=[s for s, _ in REFUSED])
def test_the_application_role_cannot_rewrite_the_audit(statement: str, refusal: str) -> None:
    entry = call()
    with connections["audit"].cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == (settings.DATABASE_APP_ROLE,)
        with pytest.raises(DatabaseError, match=refusal), transaction.atomic(using="audit"):
            cursor.execute(statement)
        cursor.execute("SELECT count(*), max(hash) FROM audit_entry WHERE id = %s", [entry.pk])
        assert cursor.fetchone() == (1, entry.hash)


@pytest.mark.django_db
def test_the_application_role_is_no_superuser_owns_nothing_and_reads_and_writes_ordinary_tables() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls FROM pg_roles "
            "WHERE rolname = current_user"
        )
        assert cursor.fetchone() == (False, False, False, False)
        cursor.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) "
            "AND n.nspname = 'public'"
        )
        assert cursor.fetchone() == (0,)
        cursor.execute(
            "SELECT c.relname, has_table_privilege(c.oid, 'SELECT'), has_table_privilege(c.oid, 'INSERT'), "
            "has_table_privilege(c.oid, 'UPDATE'), has_table_privilege(c.oid, 'DELETE'), "
            "has_table_privilege(c.oid, 'TRUNCATE'), pg_get_userbyid(c.relowner) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
        )
        tables = {name: rest for name, *rest in cursor.fetchall()}
    owner = dbroles.owner_url().split("://", 1)[1].split("@", 1)[0].split(":", 1)[0]
    assert len(tables) > 30 and {row[-1] for row in tables.values()} == {owner}
    assert tables.pop("audit_entry")[:5] == [True, True, False, False, False]
    assert {name: row[:5] for name, row in tables.items() if row[:5] != [True, True, True, True, False]} == {}


@pytest.mark.django_db(transaction=True)
def test_a_new_table_gets_the_application_roles_grants_after_migrate() -> None:
    with dbroles.as_owner(), connections["default"].cursor() as cursor:
        cursor.execute("CREATE TABLE scratch_after_migrate (id bigserial PRIMARY KEY, note text)")
        grants.grant_application_role("default")  # what runs after every migrate
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "INSERT INTO scratch_after_migrate (note) VALUES ('written by the app') RETURNING id"
            )
            assert cursor.fetchone() == (1,)
            cursor.execute("DELETE FROM scratch_after_migrate")
    finally:
        with dbroles.as_owner(), connections["default"].cursor() as cursor:
            cursor.execute("DROP TABLE scratch_after_migrate")


@pytest.mark.django_db
def test_migrate_refuses_to_run_as_the_application_role() -> None:
    with pytest.raises(CommandError, match="migrate is connected as the application role 'backoffice_app'"):
        call_command("migrate", verbosity=0)
