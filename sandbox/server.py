"""The HTTP face of the sandbox: a threaded stdlib server, routing, auth, faults, controls.

Authentication: every ``/v1/`` call needs ``Authorization: Bearer <key>`` (401 when missing or
unknown; 403 for an account the key may not see). The ``/sandbox/`` control surface takes the same
header and only a key that sees every account (the demo key); ``GET /sandbox/health`` is open so a
monitor can probe it.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

from sandbox.behaviour import parse_bool
from sandbox.clock import Clock
from sandbox.engine import Sandbox
from sandbox.faults import Decision
from sandbox.wire import ApiError, dumps, envelope

DEMO_API_KEY = "sandbox-demo-key"  # the same value as settings.SANDBOX_DEFAULT_API_KEY
# key -> accounts it may see (None: every account, and the control surface).
API_KEYS: dict[str, frozenset[int] | None] = {
    DEMO_API_KEY: None,
    "sandbox-desk-key": frozenset({19816, 122503}),
}
MAX_BODY = 10 * 1024 * 1024

ACCOUNT = r"/v1/accounts/(?P<account>[^/]+)/positions"
# (pattern, {method: endpoint name}); the first pattern that matches the path decides (405 otherwise).
V1_ROUTES: list[tuple[re.Pattern[str], dict[str, str]]] = [
    (re.compile(rf"^{ACCOUNT}/instructions$"), {"GET": "list_instructions", "POST": "submit_instructions"}),
    (re.compile(rf"^{ACCOUNT}/instructions/(?P<id>[^/]+)$"), {"DELETE": "cancel_instruction"}),
    (re.compile(rf"^{ACCOUNT}$"), {"GET": "list_positions", "DELETE": "close_positions"}),
    (re.compile(rf"^{ACCOUNT}/(?P<instrument>[^/]+)$"), {"DELETE": "close_position"}),
]
CONTROL_ROUTES: list[tuple[re.Pattern[str], dict[str, str]]] = [
    (re.compile(r"^/sandbox/health$"), {"GET": "health"}),
    (re.compile(r"^/sandbox/clock$"), {"GET": "get_clock", "PUT": "put_clock", "DELETE": "real_clock"}),
    (re.compile(r"^/sandbox/faults$"), {"GET": "get_faults", "PUT": "put_faults", "DELETE": "clear_faults"}),
    (re.compile(r"^/sandbox/faults/(?P<endpoint>[^/]+)$"), {"DELETE": "clear_fault"}),
    (
        re.compile(r"^/sandbox/behaviour$"),
        {"GET": "get_behaviour", "PUT": "put_behaviour", "DELETE": "default_behaviour"},
    ),
    (re.compile(r"^/sandbox/reset$"), {"POST": "reset"}),
    (re.compile(r"^/sandbox/generate$"), {"POST": "generate"}),
    (re.compile(r"^/sandbox/accounts$"), {"GET": "accounts"}),
    (re.compile(r"^/sandbox/requests(?:/(?P<endpoint>[a-z_]+))?$"), {"GET": "requests"}),
]


def route(
    routes: list[tuple[re.Pattern[str], dict[str, str]]], method: str, path: str
) -> tuple[str, dict[str, str]] | None:
    for pattern, methods in routes:
        match = pattern.match(path)
        if match:
            if method not in methods:
                raise ApiError(405, f"{method} is not allowed on {path}; use {', '.join(methods)}")
            return methods[method], {k: unquote(v) for k, v in match.groupdict().items()}
    return None


class Response:
    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}


def json_response(
    status: int, data: Any = None, error: ApiError | None = None, metadata: dict[str, Any] | None = None
) -> Response:
    return Response(status, dumps(envelope(data, error, metadata)))


def malformed(response: Response, kind: str) -> Response:
    """An answer a reader cannot take: half of the real body or a gateway's HTML page (200s), the real
    answer declared gzip-encoded without being so, or JSON nested deeper than any parser recurses."""
    if kind == "html":
        return Response(200, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
    if kind == "bad_gzip":
        return Response(response.status, response.body, headers={"Content-Encoding": "gzip"})
    if kind == "deep_json":
        depth = 100_000
        return Response(200, b'{"data":' + b"[" * depth + b"]" * depth + b"}")
    return Response(200, response.body[: max(1, len(response.body) // 2)])


def with_retry_after(response: Response, value: str | None) -> Response:
    if value is not None:
        response.headers["Retry-After"] = value
    return response


def with_request_id_length(response: Response, length: int) -> Response:
    """The same answer with a ``metadata.request_id`` of ``length`` characters."""
    document = json.loads(response.body)
    if isinstance(document, dict) and isinstance(document.get("metadata"), dict):
        document["metadata"]["request_id"] = ("req-" + "x" * length)[:length]
    return Response(response.status, dumps(document), response.content_type, response.headers)


# What a misbehaving upstream puts in a row: a number that is not one, a missing required field.
_BAD_VALUES = ({"market_value": "n/a"}, {"quantity": None}, {"available_quantity": "1,000"})


def with_bad_values(response: Response, rows: int) -> Response:
    """The same answer with its first ``rows`` data rows holding values a reader cannot parse."""
    document = json.loads(response.body)
    data = document.get("data")
    if isinstance(data, list):
        for index, row in enumerate(data[:rows]):
            if isinstance(row, dict):
                row.update(_BAD_VALUES[index % len(_BAD_VALUES)])
    return Response(response.status, dumps(document))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a paging client reuses one connection
    # Headers and body go out in two writes; without TCP_NODELAY, Nagle + delayed ACK add ~40 ms.
    disable_nagle_algorithm = True
    server_version = "ClearStreetSandbox/1"
    sandbox: Sandbox  # set on the subclass made by make_server
    verbose: bool = False

    def do_GET(self) -> None:
        self.handle_any()

    def do_POST(self) -> None:
        self.handle_any()

    def do_PUT(self) -> None:
        self.handle_any()

    def do_DELETE(self) -> None:
        self.handle_any()

    def do_PATCH(self) -> None:
        self.handle_any()

    def log_message(self, format: str, *args: Any) -> None:
        if self.verbose:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    # --- plumbing ------------------------------------------------------------------------------
    def read_body(self) -> bytes:
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError as exc:
            raise ApiError(400, "Content-Length is not a number") from exc
        if length > MAX_BODY:
            raise ApiError(413, f"request body over {MAX_BODY} bytes")
        return self.rfile.read(length) if length > 0 else b""

    def send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    def drop(self) -> None:
        """Close the connection without a byte of response, as a dying proxy would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def handle_any(self) -> None:
        response: Response | None = None
        body = b""
        self.endpoint_name: str | None = None
        try:
            parts = urlsplit(self.path)
            body = self.read_body()
            query = parse_qs(parts.query, keep_blank_values=True)
            if parts.path.startswith("/sandbox/"):
                response = self.control(parts.path, query, body)
            else:
                response = self.v1(parts.path, query, body)
        except ApiError as error:
            response = json_response(error.status, error=error)
        except Exception:
            traceback.print_exc()
            response = json_response(500, error=ApiError(500, "internal sandbox error"))
        if response is not None:
            self.send(response)
        if self.path.startswith("/v1/"):
            # The sandbox's own record of what reached it (for crash rehearsals: how many times did a
            # key arrive, and with what answer); None is a connection dropped without an answer.
            self.sandbox.store.log_request(
                self.sandbox.clock.now_us(),
                self.command,
                self.path,
                self.endpoint_name,
                body.decode("utf-8", "replace"),
                response.status if response is not None else None,
            )

    def key_scope(self) -> frozenset[int] | None:
        header = self.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(401, "missing bearer token: send 'Authorization: Bearer <api key>'")
        key = key.strip()
        if key not in API_KEYS:
            raise ApiError(401, "unknown API key")
        return API_KEYS[key]

    # --- /v1 -----------------------------------------------------------------------------------
    def v1(self, path: str, query: dict[str, list[str]], body: bytes) -> Response | None:
        found = route(V1_ROUTES, self.command, path)
        if found is None:
            raise ApiError(404, f"no such endpoint: {self.command} {path}")
        endpoint, params = found
        self.endpoint_name = endpoint
        decision = self.sandbox.faults.decide(endpoint)
        if decision.latency_ms:
            time.sleep(decision.latency_ms / 1000)
        if decision.drop:
            self.drop()
            return None
        if decision.error_status is not None:
            error = ApiError(
                decision.error_status, f"injected fault: {HTTPStatus(decision.error_status).phrase}"
            )
            return with_retry_after(json_response(error.status, error=error), decision.retry_after)
        scope = self.key_scope()
        account_id = self.account(params["account"], scope)
        try:
            response = self.endpoint(endpoint, account_id, params, query, body, decision)
        except ApiError as error:
            if error.status != 503:
                raise
            return with_retry_after(json_response(error.status, error=error), decision.retry_after)
        if decision.bad_value_rows:
            response = with_bad_values(response, decision.bad_value_rows)
        if decision.request_id_length:
            response = with_request_id_length(response, decision.request_id_length)
        return malformed(response, decision.malformed_kind) if decision.malformed_kind else response

    def account(self, raw: str, scope: frozenset[int] | None) -> int:
        try:
            account_id = int(raw)
            if not 0 <= account_id < 2**63:
                raise ValueError
        except ValueError as exc:
            raise ApiError(400, f"account_id must be a non-negative 64-bit integer; got {raw!r}") from exc
        if scope is not None and account_id not in scope:
            raise ApiError(403, f"this API key may not access account {account_id}")
        with self.sandbox.store.lock:
            exists = self.sandbox.store.account_exists(account_id)
        if not exists:
            raise ApiError(404, f"account {account_id} not found")
        return account_id

    def endpoint(
        self,
        name: str,
        account_id: int,
        params: dict[str, str],
        query: dict[str, list[str]],
        body: bytes,
        decision: Decision,
    ) -> Response:
        sandbox = self.sandbox
        if decision.outage and name != "submit_instructions":
            raise ApiError(503, "clearing service unavailable")
        if name == "list_positions":
            page, page_metadata = sandbox.list_positions(account_id, query)
            return json_response(200, page, metadata=page_metadata)
        if name in {"close_positions", "close_position"}:
            cancel = cancel_orders_flag(query, body)
            return json_response(200, sandbox.close_positions(account_id, params.get("instrument"), cancel))
        if name == "list_instructions":
            values = query.get("instrument_id")
            instrument = values[-1] if values and values[-1] else None
            listed = sandbox.list_instructions(account_id, instrument)
            metadata = {
                "next_page_token": None,
                "page_number": 1,
                "previous_page_token": None,
                "total_items": len(listed),
                "total_pages": 1 if listed else 0,
            }
            return json_response(200, listed, metadata=metadata)
        if name == "submit_instructions":
            status, answered, error = sandbox.submit_instructions(account_id, body, decision.outage)
            return json_response(status, answered, error)
        return json_response(200, sandbox.cancel_instruction(account_id, params["id"]))

    # --- /sandbox ------------------------------------------------------------------------------
    def control(self, path: str, query: dict[str, list[str]], body: bytes) -> Response:
        found = route(CONTROL_ROUTES, self.command, path)
        if found is None:
            raise ApiError(404, f"no such control: {self.command} {path}")
        name, params = found
        if name != "health" and self.key_scope() is not None:
            raise ApiError(403, "the control surface needs a key that sees every account (the demo key)")
        payload = parse_json_object(body) if self.command in {"PUT", "POST"} else {}
        handler: Callable[[Sandbox, dict[str, Any], dict[str, str]], Any] = CONTROLS[name]
        return json_response(200, handler(self.sandbox, payload, params))


def parse_json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ApiError(400, "request body must be a JSON object")
    return value


def cancel_orders_flag(query: dict[str, list[str]], body: bytes) -> bool:
    """``cancel_orders`` from the query string or a JSON body (the seeds show both); default false."""
    values: list[bool] = []
    if query.get("cancel_orders"):
        values.append(parse_bool(query["cancel_orders"][-1], "cancel_orders"))
    payload = parse_json_object(body)
    if "cancel_orders" in payload:
        values.append(parse_bool(payload["cancel_orders"], "cancel_orders"))
    if len(set(values)) > 1:
        raise ApiError(400, "cancel_orders given in the query and the body with different values")
    return values[0] if values else False


def _health(sandbox: Sandbox, _body: dict, _params: dict) -> dict[str, Any]:
    return {"status": "ok", "clock": sandbox.clock.describe()}


def _put_clock(sandbox: Sandbox, body: dict, _params: dict) -> dict[str, Any]:
    sandbox.set_clock(sandbox.clock.changed(body))
    return sandbox.clock.describe()


def _real_clock(sandbox: Sandbox, _body: dict, _params: dict) -> dict[str, Any]:
    sandbox.set_clock(Clock())
    return sandbox.clock.describe()


def _put_faults(sandbox: Sandbox, body: dict, _params: dict) -> dict[str, Any]:
    sandbox.set_faults(body)
    return sandbox.faults.to_config()


def _clear_faults(sandbox: Sandbox, _body: dict, params: dict) -> dict[str, Any]:
    sandbox.clear_faults(params.get("endpoint"))
    return sandbox.faults.to_config()


def _put_behaviour(sandbox: Sandbox, body: dict, _params: dict) -> dict[str, Any]:
    sandbox.set_behaviour(sandbox.behaviour.changed(body))
    return vars(sandbox.behaviour)


def _default_behaviour(sandbox: Sandbox, _body: dict, _params: dict) -> dict[str, Any]:
    sandbox.set_behaviour(type(sandbox.behaviour)())
    return vars(sandbox.behaviour)


def _reset(sandbox: Sandbox, body: dict, _params: dict) -> dict[str, Any]:
    """Reset; clock fields in the body (as for PUT /sandbox/clock) set the clock first."""
    clock = Clock().changed(body) if body else Clock()
    return sandbox.reset(clock)


def _generate(sandbox: Sandbox, body: dict, _params: dict) -> dict[str, Any]:
    return sandbox.generate(body.get("account_id"), body.get("count"))


def _accounts(sandbox: Sandbox) -> list[dict[str, Any]]:
    with sandbox.store.lock:
        accounts = sandbox.store.accounts()
    return [
        {
            **account,
            "api_keys": [
                k for k, scope in API_KEYS.items() if scope is None or account["account_id"] in scope
            ],
        }
        for account in accounts
    ]


CONTROLS: dict[str, Callable[[Sandbox, dict[str, Any], dict[str, str]], Any]] = {
    "health": _health,
    "get_clock": lambda sandbox, _b, _p: sandbox.clock.describe(),
    "put_clock": _put_clock,
    "real_clock": _real_clock,
    "get_faults": lambda sandbox, _b, _p: sandbox.faults.to_config(),
    "put_faults": _put_faults,
    "clear_faults": _clear_faults,
    "clear_fault": _clear_faults,
    "get_behaviour": lambda sandbox, _b, _p: vars(sandbox.behaviour),
    "put_behaviour": _put_behaviour,
    "default_behaviour": _default_behaviour,
    "reset": _reset,
    "generate": _generate,
    "accounts": lambda sandbox, _b, _p: _accounts(sandbox),
    "requests": lambda sandbox, _b, params: sandbox.store.requests(params.get("endpoint")),
}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def make_server(host: str, port: int, state_dir: Path, reset: bool = False, verbose: bool = False) -> Server:
    sandbox = Sandbox(state_dir, reset=reset)
    handler = type("BoundHandler", (Handler,), {"sandbox": sandbox, "verbose": verbose})
    return Server((host, port), handler)


def serve(
    host: str,
    port: int,
    state_dir: Path,
    reset: bool = False,
    verbose: bool = False,
    out: TextIO | None = None,
) -> None:
    """Run until SIGTERM or Ctrl-C; prints one line once it accepts connections."""
    out = out or sys.stdout
    server = make_server(host, port, state_dir, reset=reset, verbose=verbose)

    def stop(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    bound_host, bound_port = server.server_address[:2]
    out.write(f"Clear Street sandbox on http://{bound_host!s}:{bound_port} (state in {state_dir})\n")
    out.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.RequestHandlerClass.sandbox.store.close()  # type: ignore[attr-defined]
