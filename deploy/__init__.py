"""The processes a deployment runs, read from ``deploy/processes.toml``.

The container services and the production-profile test start them the same way,
``python -m deploy run <name>``, so what the test proves is what the containers run. This package
imports nothing of the back-office: it only builds command lines and environments.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFINITION = Path(__file__).with_name("processes.toml")
# Credentials that can alter the schema or the audit's table: the migration's alone.
OWNER_SECRETS = frozenset({"DATABASE_OWNER_URL", "DATABASE_OWNER_PASSWORD", "POSTGRES_PASSWORD"})
_PLACEHOLDER = re.compile(r"\{([A-Z_][A-Z0-9_]*)\}")


@dataclass(frozen=True)
class Process:
    name: str
    kind: str  # "once" or "service"
    argv_template: tuple[str, ...]
    database: str = "application"
    profile: str | None = None
    env_template: tuple[tuple[str, str], ...] = ()

    def argv(self, env: Mapping[str, str]) -> list[str]:
        """The command line, placeholders filled from ``env`` (then [defaults]); programs from this venv."""
        filled = [fill(part, env) for part in self.argv_template]
        return [_program(filled[0]), *filled[1:]]

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """The process's environment: the owner's database URL for migrations, the application's else
        (and no owner's credential at all), plus the process's own variables."""
        result = {key: value for key, value in env.items() if key not in OWNER_SECRETS}
        if self.database == "owner" and env.get("DATABASE_OWNER_URL"):
            result["DATABASE_URL"] = env["DATABASE_OWNER_URL"]
        for key, template in self.env_template:
            result.setdefault(key, fill(template, env))
        return result

    def queue_names(self, env: Mapping[str, str]) -> list[str]:
        """The Celery queues this process consumes (its ``-Q``); none for anything but a worker."""
        argv = self.argv(env)
        return argv[argv.index("-Q") + 1].split(",") if "-Q" in argv else []


def _defaults() -> dict[str, str]:
    return {k: str(v) for k, v in _load()["defaults"].items()}


def _load() -> dict[str, Any]:
    return tomllib.loads(DEFINITION.read_text())


def fill(template: str, env: Mapping[str, str]) -> str:
    defaults = _defaults()

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        found = env.get(name) or defaults.get(name)
        if found is None:
            raise KeyError(f"{name} is neither set nor defaulted in {DEFINITION.name}")
        return _PLACEHOLDER.sub(value, found)  # a default may name another: "{STATE_DIR}/metrics"

    return _PLACEHOLDER.sub(value, template)


def _program(name: str) -> str:
    """``python`` is this interpreter; other programs come from its virtualenv when they are there."""
    if name == "python":
        return sys.executable
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def processes() -> dict[str, Process]:
    return {
        name: Process(
            name=name,
            kind=spec["kind"],
            argv_template=tuple(spec["argv"]),
            database=spec.get("database", "application"),
            profile=spec.get("profile"),
            env_template=tuple(spec.get("env", {}).items()),
        )
        for name, spec in _load()["process"].items()
    }


def get(name: str) -> Process:
    known = processes()
    if name not in known:
        raise SystemExit(f"unknown process {name!r}; {DEFINITION.name} defines {', '.join(known)}")
    return known[name]


def run(name: str) -> None:
    """Replace this process with the named one (so signals reach it directly, as PID 1 in a container)."""
    process = get(name)
    env = process.environment(os.environ)
    argv = process.argv(env)
    os.execvpe(argv[0], argv, env)  # noqa: S606  # the argv is ours, from processes.toml
