"""``python -m deploy run <process>`` | ``list`` | ``probe live|ready``.

``probe`` is the containers' healthcheck: it asks this host's web process for /livez or /readyz the
way the proxy would (an allowed Host, X-Forwarded-Proto https) and exits 0 only on a 200.
"""

from __future__ import annotations

import http.client
import os
import sys

from deploy import fill, processes, run


def probe(which: str) -> int:
    path = {"live": "/livez", "ready": "/readyz"}[which]
    host = (os.environ.get("ALLOWED_HOSTS") or "localhost").split(",")[0].strip()
    connection = http.client.HTTPConnection("127.0.0.1", int(fill("{PORT}", os.environ)), timeout=5)
    try:
        connection.request("GET", path, headers={"Host": host, "X-Forwarded-Proto": "https"})
        status = connection.getresponse().status
    except OSError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    print(f"{path}: {status}")
    return 0 if status == 200 else 1


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "run":
        run(argv[2])
        return 0  # not reached: run replaces this process
    if len(argv) == 2 and argv[1] == "list":
        for process in processes().values():
            print(process.name, process.kind, process.profile or "", sep="\t")
        return 0
    if len(argv) == 3 and argv[1] == "probe" and argv[2] in {"live", "ready"}:
        return probe(argv[2])
    print("usage: python -m deploy run <process> | list | probe live|ready", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
