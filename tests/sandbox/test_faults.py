def test_bad_value_rows_corrupt_the_first_rows_of_a_valid_answer(sandbox):
    sandbox.set_faults({"list_positions": {"bad_value_rows": 2}})
    body = sandbox.client.get("/v1/accounts/19816/positions").json()
    rows = body["data"]
    assert rows[0]["market_value"] == "n/a" and rows[1]["quantity"] is None
    assert all(row["market_value"] != "n/a" for row in rows[2:])
    assert body["metadata"]["request_id"]


def test_bad_value_rows_must_be_a_small_whole_number(sandbox):
    response = sandbox.client.put("/sandbox/faults", json={"list_positions": {"bad_value_rows": -1}})
    assert response.status_code == 400 and "bad_value_rows" in response.json()["error"]["message"]
