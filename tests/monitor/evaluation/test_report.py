"""``GET /v1/models/{name}/report``: Evidently's report of recent records against the reference."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.monitor.evaluation.test_component import _post, _records, _reference


@pytest.fixture
def database_url(sqlite_database_url: str) -> str:
    """Evidently is slow to render: one database is enough to test the route."""
    return sqlite_database_url


def test_the_report_renders_recent_records_against_the_reference(client: TestClient) -> None:
    rng = np.random.default_rng(1)
    client.put(
        "/v1/models/churn/reference",
        content=_reference(rng),
        headers={"content-type": "application/vnd.apache.parquet"},
    )
    _post(client, _records(rng, 200, shift=1.0))
    response = client.get("/v1/models/churn/report?rows=150")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "Dataset Drift" in response.text
    assert "color" in response.text


def test_the_report_names_what_is_missing(client: TestClient) -> None:
    assert client.get("/v1/models/nope/report").status_code == 404
    _post(client, _records(np.random.default_rng(2), 5, shift=0.0))
    response = client.get("/v1/models/churn/report")
    assert response.status_code == 404
    assert "no usable reference dataset" in response.json()["detail"]
    assert client.get("/v1/models/churn/report?rows=0").status_code == 422
