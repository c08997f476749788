"""The production profile: deployment checks pass with no warning; required settings never default."""

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "production-like-secret-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG",
    "ALLOWED_HOSTS": "backoffice.example.com",
    "CLEAR_STREET_BASE_URL": "https://api.clearstreet.com",
    "CLEAR_STREET_API_KEY": "not-a-real-key",
    "AUDIT_ANCHOR_KEY": "production-like-anchor-key-0123456789abcdef",
    "AUDIT_ANCHOR_DIR": "/var/lib/backoffice/audit-anchors",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    unset = {"DEBUG", "SECRET_KEY", "CLEAR_STREET_BASE_URL", "AUDIT_ANCHOR_KEY", "AUDIT_ANCHOR_DIR"}
    base = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
    )


def test_check_deploy_is_clean_for_the_production_configuration():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = {**PRODUCTION, "SECRET_KEY": ""}
    result = manage("check", **env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_to_default_to_the_sandbox():
    env = {k: v for k, v in PRODUCTION.items() if k != "CLEAR_STREET_BASE_URL"}
    result = manage("check", **env)
    assert result.returncode != 0
    assert "CLEAR_STREET_BASE_URL must be set" in result.stderr


def test_production_refuses_to_start_without_an_audit_anchor_key_or_place():
    without_key = manage("check", **{k: v for k, v in PRODUCTION.items() if k != "AUDIT_ANCHOR_KEY"})
    assert without_key.returncode != 0
    assert "AUDIT_ANCHOR_KEY or AUDIT_ANCHOR_KEY_FILE must be set when DEBUG is off" in without_key.stderr
    missing_file = manage(
        "check", **{**PRODUCTION, "AUDIT_ANCHOR_KEY": "", "AUDIT_ANCHOR_KEY_FILE": "/nonexistent"}
    )
    assert missing_file.returncode != 0 and "AUDIT_ANCHOR_KEY_FILE /nonexistent" in missing_file.stderr
    short = manage("check", **{**PRODUCTION, "AUDIT_ANCHOR_KEY": "too-short"})
    assert short.returncode != 0 and "at least 32 characters" in short.stderr
    without_place = manage("check", **{k: v for k, v in PRODUCTION.items() if k != "AUDIT_ANCHOR_DIR"})
    assert without_place.returncode != 0 and "AUDIT_ANCHOR_DIR must be set" in without_place.stderr
