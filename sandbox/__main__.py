"""``python -m sandbox``: run the Clear Street sandbox, or generate a large book for benchmarks.

    python -m sandbox [--host H] [--port 8765] [--state-dir var/sandbox] [--reset] [--verbose]
    python -m sandbox generate [--account 900001] [--count 100000] [--state-dir var/sandbox]

``generate`` writes straight into the sandbox's SQLite file (the sandbox may be running: SQLite's
WAL and its busy timeout keep both processes consistent); ``POST /sandbox/generate`` does the same
over HTTP.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from sandbox.engine import Sandbox
from sandbox.server import serve

DEFAULT_STATE_DIR = Path(__file__).resolve().parent.parent / "var" / "sandbox"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Run the Clear Street sandbox.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT") or 8765))
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument("--reset", action="store_true", help="Start from a fresh demo book.")
    parser.add_argument("--verbose", action="store_true", help="Log every request to stderr.")
    commands = parser.add_subparsers(dest="command")
    generate = commands.add_parser("generate", help="Replace one account's book with N generated positions.")
    generate.add_argument("--account", type=int, default=900001)
    generate.add_argument("--count", type=int, default=100_000)
    generate.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    args = parser.parse_args(argv)
    if args.command == "generate":
        sandbox = Sandbox(args.state_dir)
        result = sandbox.generate(args.account, args.count)
        sandbox.store.close()
        print(f"Account {result['account_id']}: {result['positions']} positions in {result['seconds']} s.")
        return
    serve(args.host, args.port, args.state_dir, reset=args.reset, verbose=args.verbose)


if __name__ == "__main__":
    main()
