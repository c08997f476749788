"""The test run's two database roles, as a deployment has them (README "Database roles").

The test database is created and migrated by the owner (``DATABASE_OWNER_URL``; on a bare machine
the embedded server's ``backoffice_owner``); every test, and every worker a test starts, then
connects as the application role (``DATABASE_URL``'s user). Only what a deployment would also run
as the owner runs as it here: creating and dropping the database, migrating, and the flush between
transactional tests (TRUNCATE, which the application role is not granted).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
import psycopg
from django.conf import settings
from django.db import connections
from django.test import TransactionTestCase

CREDENTIALS = ("USER", "PASSWORD", "HOST", "PORT")
ALIASES = ("default", "audit")


def owner_url() -> str:
    if not settings.DATABASE_OWNER_URL:
        raise RuntimeError(
            "DATABASE_URL is set without DATABASE_OWNER_URL: the tests create their database as the "
            'owner role and run as the application role (README "Database roles"); set both.'
        )
    return settings.DATABASE_OWNER_URL


def use_role(url: str) -> None:
    """Point both aliases (the audit's mirrors the default) at ``url``'s role, keeping the database."""
    parsed = dj_database_url.parse(url)
    for alias in ALIASES:
        connections[alias].close()
        db = connections.settings[alias]
        db.update({key: parsed[key] for key in CREDENTIALS})
        db["OPTIONS"] = {**db["OPTIONS"], **parsed["OPTIONS"]}


@contextmanager
def as_owner() -> Iterator[None]:
    use_role(owner_url())
    try:
        yield
    finally:
        use_role(settings.DATABASE_URL)


def test_database_url(url: str) -> str:
    """``url`` pointed at the test database."""
    return urlunsplit(urlsplit(url)._replace(path="/" + settings.DATABASES["default"]["NAME"]))


@contextmanager
def owner_connection() -> Iterator[psycopg.Connection]:
    """A connection of the owner's to the test database (autocommit), for what only it may do."""
    with psycopg.connect(test_database_url(owner_url()), autocommit=True) as conn:
        yield conn


_flush = TransactionTestCase._fixture_teardown


def _flush_as_owner(self: TransactionTestCase) -> None:
    with as_owner():
        _flush(self)


def install() -> None:
    """Transactional tests end with a flush (TRUNCATE of every managed table): the owner's to do."""
    TransactionTestCase._fixture_teardown = _flush_as_owner  # type: ignore[method-assign]
