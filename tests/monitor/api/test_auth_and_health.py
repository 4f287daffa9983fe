"""Bearer tokens with scopes, health, readiness and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from driftloop.server import create_app
from driftloop.settings import JobSettings, Scope, Settings
from driftloop.store import make_engine
from tests.monitor.api.test_records import batch, make_record


@pytest.fixture
def secured(sqlite_database_url: str) -> Iterator[TestClient]:
    settings = Settings(
        database_url=sqlite_database_url,
        tokens={"ingest-tok": [Scope.ingest], "admin-tok": [Scope.admin]},
        jobs=JobSettings(enabled=False),
    )
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"authorization": "Bearer wrong"}, 401),
        ({"authorization": "Basic aW5nZXN0LXRvaw=="}, 401),
        ({"authorization": "Bearer ingest-tok"}, 200),
        ({"authorization": "Bearer admin-tok"}, 200),
    ],
    ids=["none", "unknown", "not-bearer", "ingest-scope", "admin-implies-all"],
)
def test_ingest_needs_a_token_with_the_ingest_scope(
    secured: TestClient, headers: dict[str, str], status: int
) -> None:
    response = secured.post("/v1/records", json=batch([make_record(0)]), headers=headers)
    assert response.status_code == status, response.text


def test_a_token_without_the_scope_is_forbidden(secured: TestClient) -> None:
    response = secured.post(
        "/v1/models", json={"name": "iris"}, headers={"authorization": "Bearer ingest-tok"}
    )
    assert response.status_code == 403
    assert "'admin'" in response.json()["detail"]


def test_metrics_and_health_stay_open(secured: TestClient) -> None:
    assert secured.get("/metrics").status_code == 200
    assert secured.get("/healthz").status_code == 200
    assert secured.get("/readyz").json() == {"status": "ok"}


def test_readyz_fails_on_an_unmigrated_database(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/empty.db"
    with TestClient(create_app(Settings(database_url=url))) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert "driftloop db upgrade" in response.json()["database"]


def test_readyz_and_ingest_answer_503_when_the_database_is_down(tmp_path: object) -> None:
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    settings = Settings(database_url="postgresql+psycopg://postgres@127.0.0.1:1/none")
    with TestClient(create_app(settings, engine=engine)) as client:
        assert client.get("/readyz").status_code == 503
        response = client.post("/v1/records", json=batch([make_record(0)]))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


def test_the_openapi_document_lists_the_public_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ["/v1/records", "/v1/models", "/v1/models/{name}", "/v1/models/{name}/reference"]:
        assert path in paths
