"""Schemathesis fuzzes the retraining write endpoints: no input makes a 5xx."""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from tests.feedback.webhooks.conftest import Monitor

PATHS = (
    r"^/v1/models/\{name\}/(retraining|retrain|versions)$"
    r"|^/v1/webhooks/(deliveries/\{webhook_id\}/replay|endpoints/\{endpoint_id\}/enable)$"
)


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_input_makes_a_server_error(monitor: Monitor, mode: str) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", monitor.client.app)
    operations = [
        op
        for op in (result.ok() for result in schema.get_all_operations())
        if op.method.upper() in {"POST", "PUT"} and re.match(PATHS, op.path)
    ]
    assert len(operations) == 5
    statuses: dict[str, set[int]] = {}
    for operation in operations:
        strategy = operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode))

        @given(case=strategy)
        @settings(
            max_examples=10,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def call(case: schemathesis.Case) -> None:
            if "name" in (case.path_parameters or {}) and case.path_parameters["name"] != "iris":
                case.path_parameters["name"] = "iris" if mode == "positive" else "nope"
            kwargs = case.as_transport_kwargs(base_url="http://testserver")
            response = monitor.client.request(
                kwargs["method"],
                kwargs["url"],
                headers=kwargs.get("headers"),
                params=kwargs.get("params"),
                json=kwargs.get("json"),
                content=None if "json" in kwargs else kwargs.get("data"),
            )
            statuses.setdefault(case.operation.path, set()).add(response.status_code)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: "
                f"{response.text[:500]}"
            )

        try:
            call()
        except Unsatisfiable:
            # No negative case exists for an operation whose inputs are all free-form.
            assert mode == "negative", operation.path
    if mode == "positive":
        # Valid inputs must get through, or the fuzzing only ever met the validator.
        accepted = {p for p, codes in statuses.items() if codes & {200, 201, 202}}
        assert "/v1/models/{name}/retraining" in accepted, statuses
