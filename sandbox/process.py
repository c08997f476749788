"""Start and stop a sandbox as a real subprocess (used by the test fixtures and the benchmarks)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SandboxProcess:
    """``python -m sandbox`` on a free port with its own state directory."""

    def __init__(
        self, state_dir: Path, port: int | None = None, log_path: Path | None = None, reset: bool = True
    ) -> None:
        self.state_dir = state_dir
        self.reset = reset
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or state_dir / "sandbox.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> SandboxProcess:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        argv = [
            sys.executable,
            "-m",
            "sandbox",
            "--port",
            str(self.port),
            "--state-dir",
            str(self.state_dir),
            *(["--reset"] if self.reset else []),
        ]
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(argv, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sandbox exited with {self.process.returncode}; see {self.log_path}")
            if self.healthy():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sandbox did not answer within {timeout}s; see {self.log_path}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/sandbox/health", timeout=1) as answer:  # noqa: S310
                return answer.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
