"""Named points where a process can be made to die at once (SIGKILL), to rehearse crashes.

The fault-injection suite starts a worker with ``BACKOFFICE_FAILPOINTS=call.after_send`` (names
comma-separated) and watches what the next worker makes of the half-done work. Unset, ``reach``
costs one lookup in an empty set. Settings refuse the variable when DEBUG is off.

Points: ``call.before_send`` (a write is on the record as pending, nothing has left),
``call.after_send`` (Clear Street answered, nothing of the answer is recorded), ``call.after_record``
(the call's audit row is written, the work's own state is not).
"""

from __future__ import annotations

import os
import signal

ENV = "BACKOFFICE_FAILPOINTS"
ARMED: frozenset[str] = frozenset(name.strip() for name in os.environ.get(ENV, "").split(",") if name.strip())


def reach(name: str) -> None:
    if name in ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
