"""Fixtures of the notifications tests: a real SMTP server (``tests.fixtures.smtp``)."""

from tests.fixtures.smtp import smtp

__all__ = ["smtp"]
