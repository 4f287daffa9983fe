"""Schemathesis fuzzes the write endpoints from the OpenAPI document: no input makes a 5xx."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

WRITE_PATHS = r"^/v1/(records|models|models/\{name\}/reference)$"
WRITES = {"POST", "PUT"}


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_input_makes_a_server_error(client: TestClient, mode: str) -> None:
    app = client.app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [
        op
        for op in (result.ok() for result in schema.get_all_operations())
        if op.method.upper() in WRITES and re.match(WRITE_PATHS, op.path)
    ]
    assert {(op.method.upper(), op.path) for op in operations} == {
        ("POST", "/v1/records"),
        ("POST", "/v1/models"),
        ("PUT", "/v1/models/{name}/reference"),
    }
    statuses: dict[str, set[int]] = {op.path: set() for op in operations}
    for operation in operations:
        strategy = operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode))

        @given(case=strategy)
        @settings(
            max_examples=30,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def call(case: schemathesis.Case) -> None:
            # Sent with Starlette's httpx-based client: schemathesis' requests transport breaks
            # when urllib3-future (pulled in by grafana-client's niquests) shadows urllib3.
            kwargs = case.as_transport_kwargs(base_url="http://testserver")
            response = client.request(
                kwargs["method"],
                kwargs["url"],
                headers=kwargs.get("headers"),
                params=kwargs.get("params"),
                content=_content(kwargs),
            )
            statuses[case.operation.path].add(response.status_code)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: "
                f"{response.text[:500]}"
            )

        call()
    if mode == "positive":
        # Valid JSON inputs must get through, or the fuzzing only ever met the validator.
        # (Random text is rarely a CSV with rows, so the reference upload is not held to it.)
        for path in ("/v1/records", "/v1/models"):
            assert statuses[path] & {200, 201}, f"{path} never accepted an input: {statuses[path]}"


def _content(kwargs: dict[str, Any]) -> bytes | None:
    if "json" in kwargs:
        return json.dumps(kwargs["json"]).encode()
    data = kwargs.get("data")
    if isinstance(data, str):
        return data.encode()
    return data if isinstance(data, bytes) else None


# Operations whose schema-valid requests may still be refused, and why (checked by every other
# check all the same). The schema cannot say "a model that exists" or "a gate that is proven".
REFUSED_WHEN_VALID = {
    ("POST", "/v1/feedback"): "labels name models and request ids that must exist",
    ("POST", "/v1/models/{name}/datasets"): "a snapshot needs labeled rows",
    ("PUT", "/v1/models/{name}/reference"): "random text is rarely a dataset with rows",
    ("PUT", "/v1/models/{name}/retraining"): "webhook URLs to metadata addresses are refused",
    ("POST", "/v1/models/{name}/versions"): "snapshot and trigger ids must exist",
    ("POST", "/v1/models/{name}/rollout"): "a rollout needs a champion and a challenger",
    ("GET", "/v1/models/{name}/gate"): "the gate answers 412 until the verdict is proven",
    ("POST", "/v1/models/{name}/gate"): "the gate answers 412 until the verdict is proven",
    ("POST", "/v1/cloudevents"): "binary mode needs ce-* headers the schema does not list",
    ("POST", "/v1/integrations/mlflow"): "MLflow deliveries must be signed",
}
# Operations that read a body in several formats and sniff it, so a body off the JSON schema
# may still be a valid file.
ACCEPTED_WHEN_INVALID = {
    ("POST", "/v1/feedback"): "CSV and Parquet bodies are sniffed; an empty file is no labels",
    ("GET", "/v1/models/{name}/performance"): "schemathesis sends unknown extra query values",
}


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_operation_answers_as_its_schema_says(client: TestClient) -> None:
    """All operations, the examples, coverage and fuzzing phases, valid and invalid inputs,
    every response checked against the published schema (status, content type, body)."""
    from schemathesis.checks import negative_data_rejection, positive_data_acceptance
    from schemathesis.core.errors import SerializationNotPossible
    from schemathesis.generation.meta import TestPhase

    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    assert client.post("/v1/models", json={"name": "iris"}).status_code == 201
    failures: list[str] = []
    sent = 0

    def send(case: schemathesis.Case) -> None:
        nonlocal sent
        try:
            kwargs = case.as_transport_kwargs(base_url="http://testserver")
        except SerializationNotPossible:
            return  # Parquet bodies: no generator for them
        response = client.request(
            kwargs["method"],
            kwargs["url"],
            headers=kwargs.get("headers"),
            params=kwargs.get("params"),
            content=_content(kwargs),
        )
        sent += 1
        key = (case.method.upper(), case.path)
        excluded = []
        if key in REFUSED_WHEN_VALID:
            excluded.append(positive_data_acceptance)
        if key in ACCEPTED_WHEN_INVALID:
            excluded.append(negative_data_rejection)
        try:
            case.validate_response(response, excluded_checks=excluded)
        except BaseException as exc:  # schemathesis raises a failure group
            if not isinstance(exc, Exception | BaseExceptionGroup):
                raise
            failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {exc}")

    for operation in operations:
        config = schema.config.generation_for(operation=operation, phase="coverage")
        coverage = schema.iter_coverage_cases(
            operation,
            generation_modes=list(schemathesis.GenerationMode),
            generation_config=config,
            extra_data_source=None,
            error_feedback=None,
            session=None,
        )
        for number, case in enumerate(coverage):
            if number >= 15:
                break
            send(case)
        for phase, mode in (
            (TestPhase.EXAMPLES, schemathesis.GenerationMode.POSITIVE),
            (TestPhase.FUZZING, schemathesis.GenerationMode.POSITIVE),
            (TestPhase.FUZZING, schemathesis.GenerationMode.NEGATIVE),
        ):

            @given(case=operation.as_strategy(generation_mode=mode, phase=phase))
            @settings(
                max_examples=4,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
            )
            def fuzz(case: schemathesis.Case) -> None:
                send(case)

            try:
                fuzz()
            except (Unsatisfiable, schemathesis.errors.InvalidSchema):
                continue  # no example, or no invalid input exists (an operation without inputs)
    assert sent > 500
    assert not failures, "\n\n".join(failures[:10])
