"""deploy/monitoring is checked: the rules by promtool (syntax and their unit tests), the scrape
config too, and every metric the rules and the dashboard name is one /metrics really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from backoffice.celery import app

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian package 'prometheus'; .ci/run installs it)"
)
METRIC = re.compile(r"\bbackoffice_[a-z_]+\b")


def run_promtool(*args: str, cwd: Path = MONITORING) -> str:
    result = subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@needs_promtool
def test_promtool_accepts_the_rules_and_their_unit_tests_pass():
    assert "SUCCESS" in run_promtool("check", "rules", "alerts.yml")
    assert "SUCCESS" in run_promtool("test", "rules", "alerts.test.yml")


@needs_promtool
def test_promtool_accepts_the_scrape_config(tmp_path):
    shutil.copy(MONITORING / "alerts.yml", tmp_path / "alerts.yml")
    token = tmp_path / "token"
    token.write_text("secret\n")
    config = (MONITORING / "prometheus.yml").read_text()
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/etc/prometheus/backoffice-metrics-token", str(token))
    )
    run_promtool("check", "config", "prometheus.yml", cwd=tmp_path)


def exported_names(client, settings) -> set[str]:
    settings.METRICS_TOKEN = "names-check-token-0123456789"
    client.get("/login/")  # so the histogram has a sample
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer names-check-token-0123456789")
    assert response.status_code == 200
    names = set()
    for family in text_string_to_metric_families(response.content.decode()):
        names.add(family.name)
        names.update({f"{family.name}_total"} if family.type == "counter" else set())
        names.update(sample.name for sample in family.samples)
        if family.type == "histogram":
            names.update(f"{family.name}_{suffix}" for suffix in ("bucket", "count", "sum"))
    return names


def referenced_in_rules() -> dict[str, set[str]]:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    return {
        rule["alert"]: set(METRIC.findall(rule["expr"]))
        for group in rules["groups"]
        for rule in group["rules"]
    }


def referenced_in_dashboard() -> dict[str, set[str]]:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    return {
        panel["title"]: {name for target in panel["targets"] for name in METRIC.findall(target["expr"])}
        for panel in dashboard["panels"]
    }


@pytest.mark.django_db(databases=["default", "audit"])
def test_every_metric_the_rules_and_the_dashboard_name_is_exported(client, settings):
    exported = exported_names(client, settings)
    rules = referenced_in_rules()
    assert {
        "BackofficeBookStale",
        "BackofficeSubmissionFailed",
        "BackofficeAuditChainVerificationFailed",
        "BackofficeQueueBacklogNearCutoff",
    } <= set(rules)
    for where, names in {**rules, **referenced_in_dashboard()}.items():
        assert names, f"{where} names no back-office metric"
        assert names <= exported, f"{where} names metrics /metrics does not export: {names - exported}"
    assert app.conf.task_default_queue  # the queue family is labelled by the project's queues
