"""The OpenAPI document: generated from the code, committed, served, and the reference page renders
under the site's strict Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiYamlRenderer
from drf_spectacular.validation import validate_schema

from tests.conftest import PASSWORD
from tests.e2e.conftest import browser, login, page  # noqa: F401 - the browser fixtures

COMMITTED = Path(__file__).resolve().parents[2] / "api" / "openapi.yaml"


def generated() -> bytes:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)
    return OpenApiYamlRenderer().render(schema, renderer_context={})


def test_committed_schema_is_up_to_date():
    assert generated().decode() == COMMITTED.read_text(), (
        "The API changed but api/openapi.yaml did not: run `make schema` and commit the result."
    )


def test_every_operation_documents_the_error_shape():
    schema = yaml.safe_load(COMMITTED.read_text())
    for path, operations in schema["paths"].items():
        assert path.startswith("/api/v1/")
        for method, operation in operations.items():
            for code in ("400", "401", "403", "404", "429"):
                ref = operation["responses"][code]["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/Error", (method, path, code)
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


@pytest.mark.django_db(databases=["default", "audit"])
def test_schema_is_served_to_signed_in_users(client, users):
    assert client.get("/api/schema/").status_code == 401
    client.force_login(users["norole"])
    response = client.get("/api/schema/")
    assert response.status_code == 200 and b"openapi: 3.0.3" in response.content
    assert client.get("/api/schema/?format=json").json()["info"]["title"]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True, databases=["default", "audit"])
def test_reference_page_renders_under_the_csp(page, live_server, users):  # noqa: F811
    violations: list[str] = []
    page.on(
        "console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None
    )
    login(page, live_server, users["operations"].username, PASSWORD)
    response = page.goto(f"{live_server.url}/api/docs/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp, "the site's own policy, unrelaxed"
    page.wait_for_selector(".swagger-ui .opblock-tag", timeout=20_000)
    tags = page.locator(".opblock-tag").all_inner_texts()
    assert any("batches" in t for t in tags) and any("positions" in t for t in tags)
    assert page.locator(".opblock").count() >= 30
    assert not [v for v in violations if "script" in v.lower()], violations
    assert not page.console_errors or all(
        "Content Security Policy" in e and "style" in e for e in page.console_errors
    ), page.console_errors
