"""Run the whole product in the foreground: web, Celery worker, one beat, and the sandbox.

``make run`` calls this. One Ctrl-C stops every process it started (and the embedded PostgreSQL
and Redis, when this run started them). If any process dies, the others are stopped too, so a
half-running stack never pretends to be healthy.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

import deploy
from backoffice import embedded


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None


class Command(BaseCommand):
    help = "Migrate, create demo users (DEBUG), and run web, worker, beat and sandbox until Ctrl-C."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--no-sandbox", action="store_true", help="Do not start the Clear Street sandbox."
        )
        parser.add_argument("--no-demo", action="store_true", help="Do not create demo users and data.")

    def handle(self, *args, **options) -> None:
        # As the owner role, exactly as a deployment's migrate step runs; everything else connects as
        # the application role (README "Database roles").
        subprocess.run(
            [sys.executable, str(settings.BASE_DIR / "manage.py"), "migrate", "--noinput", "-v", "0"],
            env={**os.environ, "DATABASE_URL": settings.DATABASE_OWNER_URL or settings.DATABASE_URL},
            cwd=settings.BASE_DIR,
            check=True,
        )
        self.stdout.write("Database migrated.")
        if settings.DEBUG and not options["no_demo"]:
            call_command("seed_demo")

        python = sys.executable
        manage = [python, str(settings.BASE_DIR / "manage.py")]
        children: list[Child] = []
        if not options["no_sandbox"]:
            children.append(Child("sandbox", [python, "-m", "sandbox", "--port", str(settings.SANDBOX_PORT)]))
        children += [
            Child("web", [*manage, "runserver", f"{options['host']}:{options['port']}", "--noreload"]),
            Child("beat", [python, "-m", "celery", "-A", "backoffice", "beat", "-l", "INFO"]),
        ]
        # The deployment's workers, one per kind of queue, as deploy/processes.toml defines them.
        children += [
            Child(process.name, process.argv(os.environ))
            for process in deploy.processes().values()
            if process.queue_names(os.environ)
        ]
        env = {
            **os.environ,
            # Children reuse the servers this process found or started, rather than probing again.
            "DATABASE_URL": settings.DATABASE_URL,
            "REDIS_URL": settings.REDIS_URL,
            "CLEAR_STREET_BASE_URL": settings.CLEAR_STREET_BASE_URL,
            "PYTHONUNBUFFERED": "1",
        }
        self.stdout.write(
            f"Starting {', '.join(c.name for c in children)}; "
            f"web on http://{options['host']}:{options['port']}/ (Ctrl-C stops everything)"
        )
        stopping = threading.Event()
        try:
            for child in children:
                child.process = subprocess.Popen(
                    child.argv,
                    env=env,
                    cwd=settings.BASE_DIR,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    bufsize=1,
                    start_new_session=True,
                )
                threading.Thread(target=self._relay, args=(child,), daemon=True).start()
            if settings.DEBUG and not options["no_demo"] and any(c.name == "sandbox" for c in children):
                # The demo's data: follow the sandbox's accounts once it answers; the worker syncs them.
                threading.Thread(target=call_command, args=("follow_sandbox_accounts",), daemon=True).start()
            signal.signal(signal.SIGTERM, lambda *_: stopping.set())
            while not stopping.is_set():
                dead = [
                    (c.name, c.process.returncode)
                    for c in children
                    if c.process and c.process.poll() is not None
                ]
                if dead:
                    self.stderr.write(f"{dead[0][0]} exited with {dead[0][1]}; stopping.")
                    break
                stopping.wait(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self._stop(children)
            embedded.stop_started_here()
            self.stdout.write("Stopped.")

    def _relay(self, child: Child) -> None:
        assert child.process and child.process.stdout
        for line in child.process.stdout:
            sys.stdout.write(f"{child.name:>8} | {line}")
            sys.stdout.flush()

    def _stop(self, children: list[Child]) -> None:
        running = [c.process for c in children if c.process and c.process.poll() is None]
        for process in running:
            os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
