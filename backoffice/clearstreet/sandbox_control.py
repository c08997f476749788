"""Reads of the sandbox's control surface (its clock and its demo accounts).

Not API calls of Clear Street's (the real API has neither), so they are not audited: the desk
follows the sandbox's clock when rehearsing, and ``make run`` follows its demo accounts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from backoffice.clearstreet.client import tls_context


def _get(base_url: str, api_key: str, path: str, timeout: float) -> Any:
    response = httpx.get(
        f"{base_url.rstrip('/')}/sandbox/{path}",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=timeout,
        verify=tls_context(),  # the clock is read every few seconds: not a certificate store each time
    )
    response.raise_for_status()
    return response.json()["data"]


def read_sandbox_clock(base_url: str, api_key: str, timeout: float = 2.0) -> datetime:
    """The sandbox's "now" as an aware UTC datetime; raises on any failure."""
    now = _get(base_url, api_key, "clock", timeout)["now"]
    return datetime.fromisoformat(now.replace("Z", "+00:00"))


def read_sandbox_accounts(base_url: str, api_key: str, timeout: float = 5.0) -> list[tuple[int, str]]:
    """The sandbox's accounts: (account_id, name)."""
    return [
        (int(a["account_id"]), str(a.get("name") or "")) for a in _get(base_url, api_key, "accounts", timeout)
    ]
