"""Auth, the envelope on every answer, the control surface, fault injection, restarts."""

from __future__ import annotations

import json

import httpx
import pytest

from sandbox.process import SandboxProcess

DESK_KEY = "sandbox-desk-key"  # sees 19816 and 122503 only


def call(sandbox, method: str, path: str, key: str | None = None, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=sandbox.base_url, headers=headers, timeout=10) as client:
        return client.request(method, path, **kwargs)


@pytest.mark.parametrize("key", [None, "not-a-key"])
def test_missing_or_unknown_key_is_401(sandbox, key):
    response = call(sandbox, "GET", "/v1/accounts/0/positions", key)
    assert response.status_code == 401
    body = response.json()
    assert body["data"] is None and body["error"]["code"] == 401 and body["metadata"]["request_id"]


def test_key_that_may_not_see_the_account_is_403(sandbox):
    assert call(sandbox, "GET", "/v1/accounts/19816/positions", DESK_KEY).status_code == 200
    for method, path in [
        ("GET", "/v1/accounts/0/positions"),
        ("DELETE", "/v1/accounts/0/positions"),
        ("GET", "/v1/accounts/0/positions/instructions"),
        ("POST", "/v1/accounts/0/positions/instructions"),
        ("DELETE", "/v1/accounts/0/positions/instructions/182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e"),
    ]:
        response = call(sandbox, method, path, DESK_KEY)
        assert response.status_code == 403, (method, path)
        assert response.json()["error"]["code"] == 403


def test_control_surface_needs_the_demo_key(sandbox):
    assert call(sandbox, "GET", "/sandbox/health").status_code == 200  # open for monitors
    assert call(sandbox, "GET", "/sandbox/clock").status_code == 401
    assert call(sandbox, "GET", "/sandbox/clock", DESK_KEY).status_code == 403
    assert call(sandbox, "GET", "/sandbox/clock", sandbox.api_key).status_code == 200


def test_every_answer_has_a_fresh_request_id(sandbox):
    ids = {sandbox.client.get("/v1/accounts/0/positions").json()["metadata"]["request_id"] for _ in range(3)}
    ids.add(sandbox.client.get("/v1/nowhere").json()["metadata"]["request_id"])
    assert len(ids) == 4


def test_unknown_routes_and_methods(sandbox):
    assert sandbox.client.get("/v1/nowhere").status_code == 404
    assert sandbox.client.put("/v1/accounts/0/positions").status_code == 405
    assert sandbox.client.delete("/v1/accounts/0/positions/instructions").status_code == 405


def test_clock_control(sandbox):
    clock = sandbox.clock()
    assert clock == {
        "now": "2026-04-24T14:30:00.000000Z",
        "business_date": "2026-04-24",
        "market_time": "2026-04-24T10:30:00-04:00",
        "frozen": True,
        "offset_seconds": None,
    }
    moved = sandbox.set_clock(business_date="2026-05-15", market_time="16:45")
    assert (moved["business_date"], moved["market_time"]) == ("2026-05-15", "2026-05-15T16:45:00-04:00")
    assert sandbox.advance(3600)["market_time"] == "2026-05-15T17:45:00-04:00"
    running = sandbox.set_clock(now="2030-01-02T15:00:00Z", frozen=False)
    assert running["frozen"] is False and running["business_date"] == "2030-01-02"
    assert sandbox.client.put("/sandbox/clock", json={"now": "2030-01-02T15:00:00"}).status_code == 400
    assert sandbox.client.put("/sandbox/clock", json={"when": "now"}).status_code == 400
    assert sandbox.client.put("/sandbox/clock", json={"advance_seconds": 1e300}).status_code == 400
    assert sandbox.client.put("/sandbox/clock", json={"now": "0001-01-01T00:00:00+01:00"}).status_code == 400
    real = sandbox.client.delete("/sandbox/clock").json()["data"]
    assert real["frozen"] is False and real["offset_seconds"] == 0


def test_reset_lays_the_demo_book_around_the_business_date(sandbox):
    sandbox.reset(now="2026-06-19T14:00:00Z")  # an expiration Friday
    rows = sandbox.client.get("/v1/accounts/122503/positions").json()["data"]
    assert any("260619" in r["symbol"] for r in rows)  # options expiring that day
    assert any("260626" in r["symbol"] for r in rows)  # ... later that week (next Friday)
    accounts = sandbox.client.get("/sandbox/accounts").json()["data"]
    assert {a["account_id"] for a in accounts} >= {0, 19816, 122503}


def test_latency_fault(sandbox):
    sandbox.set_faults({"list_positions": {"latency_ms": 300}})
    response = sandbox.client.get("/v1/accounts/0/positions")
    assert response.status_code == 200 and response.elapsed.total_seconds() >= 0.3


def test_error_rate_fault_and_its_expiry(sandbox):
    sandbox.set_faults({"*": {"error_rate": 1, "error_status": 502, "times": 2}})
    for _ in range(2):
        response = sandbox.client.get("/v1/accounts/0/positions/instructions")
        assert response.status_code == 502 and response.json()["error"]["code"] == 502
    assert sandbox.client.get("/v1/accounts/0/positions/instructions").status_code == 200
    assert sandbox.client.get("/sandbox/faults").json()["data"] == {}


def test_outage_on_a_read_endpoint_is_503(sandbox):
    sandbox.set_faults({"list_instructions": {"outage": True}})
    assert sandbox.client.get("/v1/accounts/0/positions/instructions").status_code == 503
    assert sandbox.client.get("/v1/accounts/0/positions").status_code == 200  # other endpoints unaffected


def test_dropped_connection_fault(sandbox):
    sandbox.set_faults({"list_positions": {"drop_rate": 1}})
    with pytest.raises(httpx.RemoteProtocolError):
        sandbox.client.get("/v1/accounts/0/positions")
    sandbox.client.delete("/sandbox/faults/list_positions")
    assert sandbox.client.get("/v1/accounts/0/positions").status_code == 200


@pytest.mark.parametrize("kind", ["truncated", "html"])
def test_malformed_body_fault(sandbox, kind):
    sandbox.set_faults({"list_positions": {"malformed_rate": 1, "malformed_kind": kind}})
    response = sandbox.client.get("/v1/accounts/0/positions")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


@pytest.mark.parametrize(
    "rules",
    [
        {"nowhere": {"latency_ms": 1}},
        {"list_positions": {"error_rate": 2}},
        {"list_positions": {"error_status": 404}},
        {"list_positions": {"speed": 1}},
        {"list_positions": "slow"},
    ],
)
def test_bad_fault_rules_are_400(sandbox, rules):
    assert sandbox.client.put("/sandbox/faults", json=rules).status_code == 400


def test_bad_behaviour_is_400(sandbox):
    for body in ({"outcome": "MAYBE"}, {"cutoff": "25:00"}, {"accept_delay_seconds": -1}, {"colour": 1}):
        assert sandbox.client.put("/sandbox/behaviour", json=body).status_code == 400


def test_state_survives_a_restart(tmp_path):
    state = tmp_path / "state"
    with SandboxProcess(state) as first:
        client = httpx.Client(base_url=first.base_url, headers={"Authorization": "Bearer sandbox-demo-key"})
        client.put("/sandbox/clock", json={"now": "2026-04-24T14:30:00Z", "frozen": True})
        client.delete("/v1/accounts/0/positions/GOOG")
        client.put("/sandbox/faults", json={"list_instructions": {"latency_ms": 5}})
        client.close()
    with SandboxProcess(state, reset=False) as second:
        client = httpx.Client(base_url=second.base_url, headers={"Authorization": "Bearer sandbox-demo-key"})
        assert client.get("/sandbox/clock").json()["data"]["now"] == "2026-04-24T14:30:00.000000Z"
        [goog] = client.get(
            "/v1/accounts/0/positions", params={"instrument_ids": "c3c4c5c6-d3d4-e3e4-f3f4-f5f6f7f8f9fa"}
        ).json()["data"]
        assert goog["available_quantity"] == "0"
        assert "list_instructions" in client.get("/sandbox/faults").json()["data"]
        client.close()
