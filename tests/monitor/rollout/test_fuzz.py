"""Schemathesis fuzzes the rollout action endpoint: no input makes a 5xx."""

from __future__ import annotations

import json

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from tests.monitor.rollout.traffic import MODEL, register, start


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_rollout_action_makes_a_server_error(lite_client: TestClient, mode: str) -> None:
    register(lite_client)
    start(lite_client)
    schema = schemathesis.openapi.from_asgi("/openapi.json", lite_client.app)
    (operation,) = [
        op
        for op in (result.ok() for result in schema.get_all_operations())
        if op.method.upper() == "POST" and op.path == "/v1/models/{name}/rollout"
    ]
    seen: set[int] = set()

    @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode)))
    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def call(case: schemathesis.Case) -> None:
        kwargs = case.as_transport_kwargs(base_url="http://testserver")
        url = kwargs["url"] if mode == "negative" else f"/v1/models/{MODEL}/rollout"
        body = kwargs.get("json")
        response = lite_client.post(
            url,
            content=json.dumps(body).encode() if body is not None else kwargs.get("data"),
            headers={"content-type": "application/json"},
        )
        seen.add(response.status_code)
        assert response.status_code < 500, f"{body!r} -> {response.status_code}: {response.text}"

    call()
    assert seen & {404, 409, 422}
    if mode == "positive":
        assert 200 in seen, f"no valid action got through: {sorted(seen)}"
