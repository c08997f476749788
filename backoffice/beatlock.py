"""A lease in Redis that at most one holder has at a time: the single-beat guarantee.

Taking it is one ``SET key token NX PX ttl``; keeping it and giving it back are one Lua script each
that compare the holder's token and act in the same step (Redis runs a script atomically), so no
other holder's lease can be extended or deleted between a check and an action. A holder that dies
stops renewing and the lease expires by itself after ``ttl``; a standby then takes it.

The holder also keeps its own deadline (the moment its last renewal would expire, measured on its
own monotonic clock from before the renewal was sent): past it, it acts as if it had lost the lease
even while Redis is unreachable, so a holder that stalled longer than the ttl never sends beside
the one that took over.
"""

from __future__ import annotations

import time
from typing import Any

import redis

# Extend the lease only if it is still ours: 1 if extended, 0 if it expired or another holder has it.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# Delete the lease only if it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Lease:
    def __init__(self, client: redis.Redis[bytes], key: str, token: str, ttl_seconds: float) -> None:
        self._client = client
        self.key = key
        self.token = token
        self.ttl_ms = max(1, round(ttl_seconds * 1000))
        self._renew: Any = client.register_script(_RENEW)
        self._release: Any = client.register_script(_RELEASE)
        self._valid_until = 0.0

    @property
    def held(self) -> bool:
        """Whether the last acquire or renewal is still within its ttl on our own clock."""
        return time.monotonic() < self._valid_until

    def acquire_or_renew(self) -> bool:
        """Take the lease if it is free, or extend it if it is ours; whether we hold it now."""
        sent_at = time.monotonic()
        try:
            ours = bool(self._renew(keys=[self.key], args=[self.token, self.ttl_ms]))
            if not ours:
                ours = bool(self._client.set(self.key, self.token, nx=True, px=self.ttl_ms))
        except redis.RedisError:
            ours = False  # cannot prove we hold it: act as a standby until we can
        self._valid_until = sent_at + self.ttl_ms / 1000 if ours else 0.0
        return ours

    def holder(self) -> str | None:
        value = self._client.get(self.key)
        return value.decode() if isinstance(value, bytes) else None

    def release(self) -> None:
        self._valid_until = 0.0
        self._release(keys=[self.key], args=[self.token])
