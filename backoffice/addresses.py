"""The client's address, trusting ``X-Forwarded-For`` only as far as our own proxies set it.

With ``TRUSTED_PROXY_COUNT = n``, the n proxies in front of us each append the address they saw;
the client's is the n-th from the right. Anything to the left of that was written by the client
and proves nothing. With 0 (no proxy), the socket's address is the only truth. Sign-in lockouts
(django-axes) and the API's rate limits both ask here.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    remote = str(request.META.get("REMOTE_ADDR") or "")
    proxies = int(settings.TRUSTED_PROXY_COUNT)
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < proxies:
        return remote  # fewer hops than proxies: the header did not come through all of ours
    return forwarded[-proxies]
