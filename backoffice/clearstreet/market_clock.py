"""The sandbox's clock, read over HTTP, so a desk rehearsing against it lives on its business date.

Not an API call of Clear Street's (the real API has no such endpoint): a read of the simulator's
control surface, cached briefly, and so not audited.
"""

from __future__ import annotations

from datetime import datetime

import httpx


def read_sandbox_clock(base_url: str, api_key: str, timeout: float = 2.0) -> datetime:
    """The sandbox's "now" as an aware UTC datetime; raises on any failure."""
    response = httpx.get(
        f"{base_url.rstrip('/')}/sandbox/clock",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=timeout,
    )
    response.raise_for_status()
    now = response.json()["data"]["now"]
    return datetime.fromisoformat(now.replace("Z", "+00:00"))
