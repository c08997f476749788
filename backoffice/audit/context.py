"""Attribution that callers deep in the stack need not thread through every call.

``with audit_context(actor=request.user, subject_type="batch", subject_id=batch.pk): ...`` makes
every audit row recorded inside the block carry those values unless the call names its own.
Contexts nest (inner values win). Context variables follow asyncio tasks but not new threads: a
thread pool must enter its own ``audit_context``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any


class SystemActor:
    """The actor of a move no person made: a deadline passing, a worker settling a submission, a
    cancel Clear Street confirmed. Recorded as ``system``, never as the maker or the checker whose
    request it was."""

    pk = None
    is_authenticated = False

    def get_username(self) -> str:
        return "system"

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM = SystemActor()

CONTEXT_KEYS = frozenset(
    {"actor", "approver", "account_id", "subject_type", "subject_id", "celery_task_id", "sync_run_id"}
)

_current: ContextVar[MappingProxyType[str, Any]] = ContextVar("audit_context", default=MappingProxyType({}))


@contextmanager
def audit_context(**values: Any) -> Iterator[MappingProxyType[str, Any]]:
    unknown = set(values) - CONTEXT_KEYS
    if unknown:
        raise TypeError(f"audit_context() got unexpected keys: {', '.join(sorted(unknown))}")
    merged = {**_current.get(), **{key: value for key, value in values.items() if value is not None}}
    token = _current.set(MappingProxyType(merged))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def current_audit_context() -> MappingProxyType[str, Any]:
    return _current.get()
