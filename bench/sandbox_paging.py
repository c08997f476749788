"""Page through 100,000 sandbox positions at 1000 a page over HTTP.

Starts a real sandbox process on a free port with a throw-away state directory, generates the
book through ``POST /sandbox/generate``, then pages with one keep-alive connection, following
``next_page_token``. Baselines from the same run:

- the same number of requests to ``GET /sandbox/health`` (the sandbox's cheapest answer): the
  floor set by HTTP and the threaded server, whatever the page holds;
- parsing and re-serializing the same 100,000 rows with ``json`` in this process: the floor set
  by the payload itself.

Run: ``.venv/bin/python bench/sandbox_paging.py [--count 100000] [--page-size 1000]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox.process import SandboxProcess
from sandbox.server import DEMO_API_KEY

ACCOUNT = 900001


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as state, SandboxProcess(Path(state)) as sandbox:
        client = httpx.Client(
            base_url=sandbox.base_url, headers={"Authorization": f"Bearer {DEMO_API_KEY}"}, timeout=120
        )
        started = time.perf_counter()
        generated = client.post("/sandbox/generate", json={"account_id": ACCOUNT, "count": args.count})
        generated.raise_for_status()
        generate_seconds = time.perf_counter() - started

        pages: list[bytes] = []
        seen: set[str] = set()
        params: dict[str, str | int] = {"page_size": args.page_size}
        started = time.perf_counter()
        while True:
            response = client.get(f"/v1/accounts/{ACCOUNT}/positions", params=params)
            response.raise_for_status()
            body = response.json()
            pages.append(response.content)
            seen.update(row["instrument_id"] for row in body["data"])
            token = body["metadata"]["next_page_token"]
            if not token:
                break
            params = {"page_token": token}
        paging_seconds = time.perf_counter() - started
        assert len(seen) == args.count, f"saw {len(seen)} distinct rows, expected {args.count}"

        started = time.perf_counter()
        for _ in pages:
            client.get("/sandbox/health").raise_for_status()
        health_seconds = time.perf_counter() - started

        started = time.perf_counter()
        for page in pages:
            json.dumps(json.loads(page))
        json_seconds = time.perf_counter() - started
        client.close()

    n = len(pages)
    lines = [
        ("generate the book (POST /sandbox/generate)", generate_seconds, ""),
        ("page through it over HTTP", paging_seconds, f"{n / paging_seconds:.1f} pages/s"),
        (f"baseline: {n} x GET /sandbox/health", health_seconds, f"{n / health_seconds:.1f} req/s"),
        ("baseline: json parse+dump of the same rows", json_seconds, ""),
    ]
    print(f"sandbox paging: {args.count} positions, {n} pages of {args.page_size}")
    for label, seconds, rate in lines:
        print(f"  {label:<44} {seconds:7.2f} s  {rate}")
    print(f"  {'ratio paging / health requests':<44} {paging_seconds / health_seconds:7.1f} x")
    print(f"  {'ratio paging / json of the same rows':<44} {paging_seconds / json_seconds:7.1f} x")


if __name__ == "__main__":
    main()
