"""Loaded with ``-p`` before Django is configured: the test run's environment defaults.

Tests use the development profile of the settings (static files served from the source tree,
no TLS redirect). The production profile is exercised by ``tests/backoffice/test_settings.py`` and,
running the deployment's own processes, by ``tests/production``.
"""

import os

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# A queue of the run's own, so a worker of a running `make run` never takes the tests' tasks.
os.environ.setdefault("CELERY_QUEUE", f"tests-{os.getpid()}")
# Second-factor enforcement is off for the suite's business tests (they sign in with force_login);
# the identity tests (tests/access) turn it on and pin it.
os.environ.setdefault("MFA_ENFORCED", "0")
# The run's audit checkpoints, apart from `make run`'s (one file per test database, emptied when the
# run creates its database: tests/conftest.py).
os.environ.setdefault(
    "AUDIT_ANCHOR_DIR", os.path.join(os.path.dirname(os.path.dirname(__file__)), "var", "test-audit-anchors")
)
