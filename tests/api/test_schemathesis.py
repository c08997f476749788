"""A property-based run of the API against its own committed schema (schemathesis): generated
requests to every operation, as a superuser with a token, must never get a server error nor an answer
that breaks the schema. Bounded (few examples per operation, derandomized) so CI stays fast."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.services import issue_token
from tests.test_access import sample_objects

SCHEMA = Path(__file__).resolve().parents[2] / "api" / "openapi.yaml"
schema = schemathesis.openapi.from_path(str(SCHEMA))
schema.app = get_wsgi_application()

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def token(users, settings) -> str:
    settings.MARKET_CLOCK = "system"  # no sandbox here: the wall clock decides the business day
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "100000/minute", "anon": "100000/minute"},
    }
    sample_objects(users)  # an account, a position, a batch, an instruction, a cancel, a close, an order
    # In-process WSGI calls inside the test's transaction: keep Django from closing the connection
    # at the end of each request, as its own test client does.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield issue_token(users["superuser"], "schemathesis")[1]
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.django_db(databases=["default", "audit"])
@schema.parametrize()
@hypothesis_settings(
    max_examples=8,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, token):
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
