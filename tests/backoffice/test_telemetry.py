"""Logs carry the request id, the user and the task; the request id crosses into the worker; and a
real gunicorn with two workers logs JSON and sums its workers' metrics in one scrape."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from backoffice.celery import app
from backoffice.telemetry import logs
from positions.models import Account, SyncRun
from tests.conftest import (
    BASE_DIR,
    json_log_lines,
    start_worker,
    stop_worker,
    subprocess_database_url,
    wait_for,
)

HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def json_log():
    """Everything logged at INFO and above, rendered by the project's JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.make_formatter("json"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def records() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.mark.django_db(databases=["default", "audit"])
def test_a_clean_request_id_is_reused_and_echoed_anything_else_replaced(client):
    assert client.get("/login/", HTTP_X_REQUEST_ID="lb-7f3a.91:2").headers["X-Request-ID"] == "lb-7f3a.91:2"
    for bad in ("two words", "x" * 101, 'a"}{"user":"admin', "-leading-dash", "é"):
        echoed = client.get("/login/", HTTP_X_REQUEST_ID=bad).headers["X-Request-ID"]
        assert HEX_ID.fullmatch(echoed), (bad, echoed)
    first, second = (client.get("/login/").headers["X-Request-ID"] for _ in range(2))
    assert HEX_ID.fullmatch(first) and first != second


@pytest.mark.django_db(databases=["default", "audit"])
def test_each_line_of_a_request_carries_its_id_and_user(client, users, json_log):
    client.force_login(users["operations"])
    response = client.get("/positions/", HTTP_X_REQUEST_ID="req-positions-1")
    assert response.status_code == 200
    [line] = [r for r in json_log() if r.get("message") == "request"]
    assert line["request_id"] == "req-positions-1"
    assert line["user"] == users["operations"].username and line["user_id"] == users["operations"].pk
    assert (line["view"], line["status"], line["method"], line["path"]) == (
        "positions:list",
        200,
        "GET",
        "/positions/",
    )
    assert line["level"] == "info" and line["logger"] == "backoffice.requests" and "timestamp" in line
    anonymous = client.__class__().get("/positions/", HTTP_X_REQUEST_ID="req-anon")
    assert anonymous.status_code == 302
    [line] = [r for r in json_log() if r.get("request_id") == "req-anon"]
    assert "user" not in line, "an anonymous request names no user"


@pytest.mark.django_db(databases=["default", "audit"])
def test_an_api_token_user_is_named_once_the_api_authenticated_them(client, users, json_log):
    from api.services import issue_token

    _, secret = issue_token(users["compliance"], "logs")
    response = client.get(
        "/api/v1/accounts/", HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_X_REQUEST_ID="req-api"
    )
    assert response.status_code == 200
    [line] = [r for r in json_log() if r.get("message") == "request"]
    assert line["request_id"] == "req-api" and line["user"] == users["compliance"].username


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, databases=["default", "audit"])
def test_a_task_queued_by_a_request_logs_its_task_id_name_and_the_request_id(
    client, users, sandbox, settings
):
    settings.CLEAR_STREET_BASE_URL = sandbox.base_url
    queue = f"telemetry-{uuid.uuid4().hex[:8]}"
    worker = start_worker(
        queue, "telemetry-worker", sandbox.base_url, env={"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}
    )
    log = BASE_DIR / "var" / "test-telemetry-worker.log"
    app.conf.task_default_queue = queue  # restored by the suite's autouse fixture
    try:
        account = Account.objects.create(number=19816)
        client.force_login(users["operations"])
        response = client.post("/positions/sync/", {"account": "19816"}, HTTP_X_REQUEST_ID="req-sync-42")
        assert response.status_code == 202, response.content
        wait_for(lambda: SyncRun.objects.filter(account=account, finished_at__isnull=False).exists())
        run = SyncRun.objects.get(account=account)
        assert run.status == SyncRun.Status.SUCCEEDED, run.error

        def task_lines() -> list[dict]:
            return [r for r in json_log_lines(log) if r.get("task_id") == run.celery_task_id]

        wait_for(lambda: any("succeeded" in r.get("message", "") for r in task_lines()), timeout=30)
        lines = task_lines()
        assert lines
        for record in lines:
            assert record["task_name"] == "positions.sync_positions"
            assert record["request_id"] == "req-sync-42", record
    finally:
        stop_worker(worker)
        app.connection_for_write().default_channel.client.delete(queue)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_gunicorn_with_two_workers_logs_json_and_one_scrape_sums_both(tmp_path: Path):
    port = _free_port()
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    stale = metrics_dir / "histogram_99999.db"
    stale.write_bytes(b"left by a previous run")  # counted (or unreadable) unless the start clears it
    token = uuid.uuid4().hex
    env = {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "METRICS_TOKEN": token,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }
    out = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:backoffice.telemetry.gunicorn",
            "backoffice.wsgi:application",
            "-w",
            "2",
            "--threads",
            "4",
            "-b",
            f"127.0.0.1:{port}",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=2)  # not a login page: the count below is exact
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, (
                    tmp_path / "gunicorn.log"
                ).read_text()
                time.sleep(0.3)
        pages = 40

        def fetch(n: int) -> int:
            return httpx.get(f"{base}/login/", headers={"X-Request-ID": f"gun-{n}"}, timeout=10).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(fetch, range(pages))) == {200}
        assert not stale.exists()
        files = list(metrics_dir.glob("histogram_*.db"))
        assert len(files) == 2, f"both workers served and recorded: {files}"

        counts = set()
        for _ in range(6):  # whichever worker answers, it reports both workers' requests
            response = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert response.status_code == 200
            for family in text_string_to_metric_families(response.text):
                for sample in family.samples:
                    if sample.name == "backoffice_http_request_duration_seconds_count" and sample.labels == {
                        "view": "login",
                        "method": "GET",
                        "status": "200",
                    }:
                        counts.add(sample.value)
        assert counts == {pages}, counts
    finally:
        server.terminate()
        server.wait(timeout=30)
        out.close()
    records = []
    for line in (tmp_path / "gunicorn.log").read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    served = {r["request_id"] for r in records if r.get("message") == "request" and r.get("view") == "login"}
    assert {f"gun-{n}" for n in range(pages)} <= served
    # gunicorn's own lines are JSON too.
    assert any(r.get("logger") == "gunicorn.error" and "Booting worker" in r["message"] for r in records)


def test_production_logs_json_by_default_and_refuses_an_unknown_format():
    from tests.backoffice.test_settings import PRODUCTION, manage

    script = "import logging; logging.getLogger('backoffice.check').warning('json by default')"
    result = manage("shell", "-c", script, **PRODUCTION)
    assert result.returncode == 0, result.stderr
    [line] = [json.loads(raw) for raw in result.stderr.splitlines() if "json by default" in raw]
    assert line["message"] == "json by default"
    assert (line["level"], line["logger"]) == ("warning", "backoffice.check")

    refused = manage("check", **PRODUCTION, LOG_FORMAT="xml")
    assert refused.returncode != 0 and "LOG_FORMAT must be one of json, console" in refused.stderr
