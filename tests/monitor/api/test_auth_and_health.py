"""Bearer tokens with scopes, health, readiness and the OpenAPI document."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import psycopg.errors
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, make_url, text

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
        ready = client.get("/readyz")
        response = client.post("/v1/records", json=batch([make_record(0)]))
    for answer in (ready, response):
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "5"
        assert answer.json()["detail"] == "database unavailable (OperationalError); retry later"
    assert ready.json()["database"] == "OperationalError"


def _driver_errors() -> dict[str, dict[str, Exception]]:
    return {
        "sqlite": {
            "unavailable": sqlite3.OperationalError("database is locked"),
            "refused-every-time": sqlite3.OperationalError("too many SQL variables"),
        },
        "postgresql": {
            "unavailable": psycopg.errors.OperationalError("server closed the connection"),
            "refused-every-time": psycopg.errors.ProgramLimitExceeded("too many columns"),
        },
    }


@pytest.mark.parametrize(
    ("kind", "status"),
    [("unavailable", 503), ("refused-every-time", 500)],
)
def test_an_error_of_the_driver_itself_gets_the_same_answer_as_sqlalchemys(
    database_url: str, kind: str, status: int
) -> None:
    """Statements on the driver's own connection (PostgreSQL's COPY) raise the driver's errors:
    a connection lost there is a 503 to retry, not a bare 500."""
    app = create_app(Settings(database_url=database_url, jobs=JobSettings(enabled=False)))
    error = _driver_errors()[make_url(database_url).get_backend_name()][kind]

    def fail() -> None:
        raise error

    app.add_api_route("/v1/driver-error", fail, methods=["POST"])
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/v1/driver-error")
    assert response.status_code == status, response.text
    assert type(error).__name__ in response.json()["detail"]
    assert ("retry-after" in response.headers) is (status == 503)


@pytest.mark.postgres
def test_a_monitor_that_lost_its_database_is_unready_and_recovers_without_a_restart(
    pg_database_url: str, pg_admin: Engine
) -> None:
    database = make_url(pg_database_url).database
    settings = Settings(database_url=pg_database_url, jobs=JobSettings(enabled=False))
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        # The database goes away: the monitor's sessions end and new ones are refused.
        with pg_admin.connect() as admin:
            admin.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
            try:
                admin.execute(
                    text(
                        "SELECT pg_terminate_backend(pid, 30000) FROM pg_stat_activity "
                        "WHERE datname = :db"
                    ),
                    {"db": database},
                )
                ready = client.get("/readyz")
                ingest = client.post("/v1/records", json=batch([make_record(0)]))
            finally:
                admin.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
        # Back: the same process answers again (the pool reconnects), and what it
        # acknowledges is stored.
        ready_again = client.get("/readyz")
        ingest_again = client.post("/v1/records", json=batch([make_record(1)]))
    for answer in (ready, ingest):
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "5"
        assert answer.json()["detail"] == "database unavailable (OperationalError); retry later"
    assert ready_again.status_code == 200, ready_again.text
    assert ingest_again.status_code == 200, ingest_again.text
    engine = create_engine(pg_database_url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT request_id FROM records")).scalars().all()
    finally:
        engine.dispose()
    assert stored == [make_record(1)["request_id"]]


def test_the_openapi_document_lists_the_public_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ["/v1/records", "/v1/models", "/v1/models/{name}", "/v1/models/{name}/reference"]:
        assert path in paths
