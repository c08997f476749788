"""Reachability of Clear Street, without making an API call (so no audit row per probe)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit


def upstream_reachable(base_url: str, timeout: float = 2.0) -> tuple[bool, str]:
    """Open and close a TCP connection to the API host; report whether it answered."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, f"{host}:{port} accepts connections"
    except OSError as exc:
        return False, f"{host}:{port} unreachable ({exc.__class__.__name__})"
