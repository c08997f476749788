"""Reads that tolerate lag from a PostgreSQL read replica; everything else from the primary.

Off unless ``DATABASE_REPLICA_URL`` is set (settings then add the ``replica`` alias, this router and
``ReplicaReadsMiddleware``). A read goes to the replica only when all of these hold:

- it is made while a page is answering a GET or HEAD (the middleware opens that window), and the
  same browser made no write in the last ``DATABASE_REPLICA_PIN_SECONDS`` (so a page shown after a
  form sees what the form wrote);
- nothing was written in this request yet, and the primary is not inside a transaction (a read in a
  transaction is part of what it decides);
- the table is one of the desk's mirrors (``REPLICA_APPS``) and neither carries a four-eyes decision
  nor hangs off one (``backoffice.models.Acknowledgeable``: batches and every four-eyes request);
- the code is not inside ``primary()`` (advisory locks, for one).

Everything else reads the primary: workers, beat, commands, the API's writes, sessions, users,
permissions, jobs, access requests. Writes always go to the primary. The audit's models name
their connection themselves (``backoffice.audit.models.AUDIT_DB``, the primary): the chain's head is
never read from a replica; the audit list alone asks ``read_alias`` for its pages.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.http import HttpRequest, HttpResponse

# Apps whose tables mirror Clear Street or the desk's books: a page may show them a moment old.
REPLICA_APPS = frozenset({"positions", "instructions"})
# Set after an unsafe request; while it lives, this browser's pages read the primary.
PIN_COOKIE = "backoffice_primary"

# The alias reads may go to in this context; None: the primary.
_replica_reads: ContextVar[str | None] = ContextVar("backoffice_replica_reads", default=None)


def replica_alias() -> str:
    """The replica's alias when one is configured, else ``""``."""
    return str(getattr(settings, "DATABASE_REPLICA_ALIAS", "") or "")


@contextlib.contextmanager
def replica_reads() -> Iterator[None]:
    """Lag-tolerant reads for the block (a page's GET), when a replica is configured."""
    token = _replica_reads.set(replica_alias() or None)
    try:
        yield
    finally:
        _replica_reads.reset(token)


@contextlib.contextmanager
def primary() -> Iterator[None]:
    """Every read of the block from the primary, whatever the page."""
    token = _replica_reads.set(None)
    try:
        yield
    finally:
        _replica_reads.reset(token)


def read_alias(default: str = DEFAULT_DB_ALIAS) -> str:
    """Where a lag-tolerant read made now should go: the replica inside a page's window (and outside
    any transaction), else ``default``. For code that names its connection (the audit list)."""
    alias = _replica_reads.get()
    if alias is None or connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return default
    return alias


@functools.cache
def _decision_table(model: type[models.Model]) -> bool:
    from backoffice.models import Acknowledgeable

    if issubclass(model, Acknowledgeable):
        return True
    return any(
        field.is_relation
        and field.related_model is not None
        and issubclass(field.related_model, Acknowledgeable)
        for field in model._meta.concrete_fields
    )


class PrimaryReplicaRouter:
    """``DATABASE_ROUTERS`` when a replica is configured; see the module's docstring for the rules."""

    def db_for_read(self, model: type[models.Model], **hints: Any) -> str | None:
        if model._meta.app_label not in REPLICA_APPS or _decision_table(model):
            return DEFAULT_DB_ALIAS
        return read_alias()

    def db_for_write(self, model: type[models.Model], **hints: Any) -> str:
        # The rest of this request reads what it wrote.
        _replica_reads.set(None)
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: models.Model, obj2: models.Model, **hints: Any) -> bool | None:
        # The replica holds the primary's rows: an object read from one may point at one from the other.
        both = {obj1._state.db, obj2._state.db}
        return True if both <= {DEFAULT_DB_ALIAS, replica_alias()} else None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if db == replica_alias() else None


class ReplicaReadsMiddleware:
    """Opens the replica's window for GET and HEAD; after any other method, pins this browser to the
    primary for ``DATABASE_REPLICA_PIN_SECONDS`` (longer than the replica's usual lag)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in {"GET", "HEAD"}:
            response = self.get_response(request)
            response.set_cookie(
                PIN_COOKIE,
                str(int(time.time())),
                max_age=settings.DATABASE_REPLICA_PIN_SECONDS,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
            return response
        if PIN_COOKIE in request.COOKIES:
            return self.get_response(request)
        with replica_reads():
            return self.get_response(request)
