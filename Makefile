# The two commands the README promises: `make run` and `make test`.
# Works on a machine with nothing but Python 3.11+: uv is bootstrapped into var/uv, the project's
# dependencies are installed from uv.lock into .venv, PostgreSQL and Redis start under var/ unless
# DATABASE_URL / REDIS_URL point elsewhere.

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := var/uv/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))

.PHONY: run test lint install migrate check-deploy services-stop clean sandbox schema

$(UV):
	$(PYTHON) -m venv var/uv
	var/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet
	touch $@

install: $(VENV)/.installed

run: install
	DEBUG=$${DEBUG:-1} $(PY) manage.py runstack

# Migrations run as the owner role (README "Database roles"): DATABASE_OWNER_URL, else the embedded
# server's owner when DATABASE_URL is unset, else DATABASE_URL itself (a deployment's migrate step).
migrate: install
	DEBUG=$${DEBUG:-1} DATABASE_URL="$${DATABASE_OWNER_URL:-$${DATABASE_URL:-$$($(PY) -m backoffice.embedded owner-url)}}" \
	$(PY) manage.py migrate --noinput

test: install lint
	$(PY) -m pytest

# Style, the import contracts (pyproject's [tool.importlinter]) and the type checker ([tool.mypy]).
lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	DEBUG=1 DATABASE_URL=postgresql://unused@127.0.0.1:9/unused REDIS_URL=redis://127.0.0.1:9/0 $(PY) -m mypy

sandbox: install
	$(PY) -m sandbox --port $${SANDBOX_PORT:-8765}

# The production configuration must pass Django's deployment checks with no warning.
check-deploy: install
	DEBUG=0 SECRET_KEY=check-deploy-$$(date +%s)-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH \
	ALLOWED_HOSTS=backoffice.example.com CLEAR_STREET_BASE_URL=https://api.clearstreet.com \
	CLEAR_STREET_API_KEY=unused AUDIT_ANCHOR_KEY=check-deploy-anchor-key-0123456789abcdef \
	AUDIT_ANCHOR_DIR=var/check-deploy-anchors DATABASE_URL=postgresql://unused@db.invalid/unused \
	REDIS_URL=redis://redis.invalid:6379/0 $(PY) manage.py check --deploy --fail-level WARNING

# The REST API's OpenAPI document, generated from the code; tests/api/test_schema.py fails when the
# committed copy is out of date.
schema: install
	DEBUG=$${DEBUG:-1} $(PY) manage.py spectacular --file api/openapi.yaml --validate --fail-on-warn

services-stop: install
	$(PY) -m backoffice.embedded stop

clean: services-stop
	rm -rf var/postgres var/redis var/static var/sandbox var/celerybeat-schedule* var/audit-anchors
