"""The two database roles (README "Database roles").

The owner runs ``migrate`` and owns every table. The application role (``DATABASE_APP_ROLE``), which
web, workers and beat connect as, owns nothing: after every migrate the owner grants it reading and
writing the ordinary tables and only INSERT and SELECT on the append-only ones, so it can neither
rewrite the audit nor switch off the triggers that guard it (that takes ownership).
"""

from __future__ import annotations

import re
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.management.base import CommandError
from django.db import connections

from backoffice.audit.models import APPEND_ONLY_TABLES

ROLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def app_role() -> str:
    role: str = settings.DATABASE_APP_ROLE
    if not ROLE_NAME.fullmatch(role):
        raise CommandError(f"DATABASE_APP_ROLE must be a plain PostgreSQL role name, not {role!r}.")
    return role


def check_migrating_role(using: str) -> None:
    """Refuse to migrate as the application role, or for an application role that would own or be
    able to do everything: either would leave the audit rewritable by the processes."""
    role = app_role()
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = %s)", [role])
        current, app_is_superuser = cursor.fetchone()
    if current == role:
        raise CommandError(
            f"migrate is connected as the application role {role!r}: run it as the owner role, with "
            "DATABASE_URL set to the owner's URL (`make migrate` does this on a development machine)."
        )
    if app_is_superuser is None:
        raise CommandError(
            f"The application role {role!r} (DATABASE_APP_ROLE) does not exist on this server: create it "
            '(README "Database roles") before migrating.'
        )
    if app_is_superuser:
        raise CommandError(f"The application role {role!r} is a superuser; it must not be (NOSUPERUSER).")


def grant_application_role(using: str) -> None:
    """(Re)grant the application role its privileges on every table and sequence of the schema.

    Run after every migrate, so tables a migration added get their grants at once; no default
    privileges, which would also hand UPDATE and DELETE to a new append-only table.
    """
    connection = connections[using]
    role = connection.ops.quote_name(app_role())
    append_only = [connection.ops.quote_name(table) for table in APPEND_ONLY_TABLES]
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        (schema_name,) = cursor.fetchone()
        schema = connection.ops.quote_name(schema_name)
        cursor.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}")
        cursor.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
        for table in append_only:
            cursor.execute(f"REVOKE ALL ON TABLE {table} FROM {role}, PUBLIC")
            cursor.execute(f"GRANT SELECT, INSERT ON TABLE {table} TO {role}")
        for table in APPEND_ONLY_TABLES:
            # The writer gives each row its id (the head's + 1), so the table's sequence is not the app's.
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            (sequence,) = cursor.fetchone()
            if sequence:
                cursor.execute(f"REVOKE ALL ON SEQUENCE {sequence} FROM {role}, PUBLIC")


def _before_migrate(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    check_migrating_role(using)


def _after_migrate(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    grant_application_role(using)


def connect(app_config: AppConfig) -> None:
    """Hook both checks to ``migrate`` (and the grants to ``flush``), once per run."""
    from django.db.models.signals import post_migrate, pre_migrate

    pre_migrate.connect(_before_migrate, sender=app_config, dispatch_uid="backoffice.dbroles.check")
    post_migrate.connect(_after_migrate, sender=app_config, dispatch_uid="backoffice.dbroles.grant")
