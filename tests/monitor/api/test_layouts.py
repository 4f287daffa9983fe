"""``POST /v1/models/{name}/layouts``: what senders inferred shows in the schema; a registered
layout always wins."""

from __future__ import annotations

from fastapi.testclient import TestClient

INFERRED = {"input_path": "df", "inferred": "openapi"}


def test_a_reported_layout_shows_in_the_schema_of_a_model_not_yet_registered(
    client: TestClient,
) -> None:
    answer = client.post("/v1/models/wine/layouts", json={"routes": {"/score": INFERRED}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == ["/score"]
    schema = client.get("/v1/models/wine").json()["schema"]
    assert schema["layout"] is None
    assert schema["routes"]["/score"]["input_path"] == "df"
    assert schema["routes"]["/score"]["inferred"] == "openapi"


def test_a_registered_layout_is_never_replaced_by_a_report(client: TestClient) -> None:
    registered = {"routes": {"/score": {"input_path": "rows"}}}
    created = client.post("/v1/models", json={"name": "wine", "schema": registered})
    assert created.status_code == 201, created.text
    answer = client.post("/v1/models/wine/layouts", json={"routes": {"/score": INFERRED}})
    assert answer.json()["accepted"] == []
    route = client.get("/v1/models/wine").json()["schema"]["routes"]["/score"]
    assert (route["input_path"], route["inferred"]) == ("rows", None)
