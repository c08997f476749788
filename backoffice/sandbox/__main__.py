"""``python -m backoffice.sandbox``: the sandbox without Django (``manage.py runsandbox`` wraps this)."""

from __future__ import annotations

import argparse
from pathlib import Path

from backoffice.sandbox.server import serve

DEFAULT_STATE_DIR = Path(__file__).resolve().parent.parent.parent / "var" / "sandbox"


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the Clear Street sandbox.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument("--reset", action="store_true", help="Start from a fresh demo book.")
    parser.add_argument("--verbose", action="store_true", help="Log every request to stderr.")
    args = parser.parse_args()
    serve(args.host, args.port, args.state_dir, reset=args.reset, verbose=args.verbose)


if __name__ == "__main__":
    main()
