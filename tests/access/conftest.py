"""Fixtures of the identity tests: a second administrator, second-factor helpers, a real SMTP server
(``tests.fixtures.smtp``)."""

from __future__ import annotations

import itertools
import time

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from backoffice import roles
from backoffice.audit.models import AuditEntry
from tests.conftest import make_user
from tests.fixtures.smtp import body_of, smtp

__all__ = ["body_of", "smtp"]

_addresses = itertools.count(1)


def fresh_address() -> str:
    """An address no other test used: sign-in and token counters are kept per address in Redis."""
    n = next(_addresses) + int(time.time() * 1000) % 50_000
    return f"10.{(n >> 16) % 256}.{(n >> 8) % 256}.{n % 256 or 1}"


@pytest.fixture
def admin2(db):
    return make_user("admin_gail", roles.ADMINS, is_staff=True)


@pytest.fixture
def mfa_on(settings):
    settings.MFA_ENFORCED = True
    return settings


def code_for(device: TOTPDevice, *, after: int | None = None) -> str:
    """The authenticator's current code; with ``after``, waits for a time step past that one (a code
    is accepted once, so a second verification needs the next step)."""
    device.refresh_from_db()
    floor = device.last_t if after is None else max(after, device.last_t)
    while int(time.time()) // device.step <= floor:
        time.sleep(0.2)
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):0{device.digits}d}"


def actions_about(subject_type: str, subject_id: object) -> list[str]:
    return list(
        AuditEntry.objects.filter(subject_type=subject_type, subject_id=str(subject_id))
        .order_by("id")
        .values_list("action", flat=True)
    )
