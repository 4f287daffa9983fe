"""``POST /v1/feedback``: labels joined by request id whatever arrives first, corrections,
refusals."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from driftloop.server import create_app
from driftloop.settings import JobSettings, Settings
from driftloop.store import LabelRow
from tests.feedback.support import (
    joined,
    later,
    record,
    register,
    sample,
    send_labels,
    send_records,
)


@pytest.fixture
def sqlite_client(sqlite_database_url: str) -> Iterator[TestClient]:
    """The monitor on SQLite only: for checks of the HTTP surface that no database changes."""
    app = create_app(Settings(database_url=sqlite_database_url, jobs=JobSettings(enabled=False)))
    with TestClient(app) as client:
        yield client
    app.state.driftloop.engine.dispose()


def stored_labels(client: TestClient) -> int:
    state = client.app.state.driftloop  # type: ignore[attr-defined]
    with state.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(LabelRow)) or 0)


def test_labels_after_their_records_are_joined_by_request_id(client: TestClient) -> None:
    register(client)
    send_records(client, [record(f"r{i}", "cat", at=later(i)) for i in range(5)])
    body = send_labels(
        client,
        [
            {
                "request_id": f"r{i}",
                "label": ["cat", "dog"][i % 2],
                "timestamp": later(60 + i).isoformat(),
            }
            for i in range(4)
        ],
    )
    assert body == {"received": 4, "stored": 4, "corrected": 0, "duplicates": 0, "pending": 0}
    rows = joined(client)
    assert list(rows.index.get_level_values(0)) == ["r0", "r1", "r2", "r3"]
    assert list(rows["label"]) == ["cat", "dog", "cat", "dog"]
    assert list(rows["prediction"]) == ["cat"] * 4
    assert (rows["label_ts"] - rows["ts"]).dt.total_seconds().tolist() == [60.0] * 4
    assert list(rows["size"]) == [1.0] * 4
    assert (
        sample(client, "driftloop_feedback_labels_total", {"model": "pets", "outcome": "new"}) == 4
    )


def test_labels_before_their_records_wait_and_join_when_the_records_come(
    client: TestClient,
) -> None:
    register(client)
    body = send_labels(
        client,
        [{"request_id": "early-1", "label": "fox"}, {"request_id": "early-2", "label": "dog"}],
    )
    assert body["pending"] == 2
    assert joined(client).empty
    send_records(
        client, [record("early-1", "fox"), record("early-2", "cat"), record("other", "cat")]
    )
    rows = joined(client)
    assert rows["label"].to_dict() == {
        ("early-1", "champion"): "fox",
        ("early-2", "champion"): "dog",
    }
    # A later label without a model now finds the model through the record, and corrects.
    body = send_labels(client, {"request_id": "early-2", "label": "cat"})
    assert body == {"received": 1, "stored": 0, "corrected": 1, "duplicates": 0, "pending": 0}
    assert joined(client).loc[("early-2", "champion"), "label"] == "cat"
    assert stored_labels(client) == 2, "the pending copy is replaced, not kept beside"


def test_a_duplicate_is_counted_once_and_a_correction_replaces_the_label(
    client: TestClient,
) -> None:
    register(client)
    send_records(client, [record("r1", "cat"), record("r2", "dog")])
    send_labels(client, [{"request_id": "r1", "label": "cat", "model": "pets"}])
    body = send_labels(
        client,
        [
            {"request_id": "r1", "label": "cat"},  # same again: a duplicate
            {"request_id": "r2", "label": "dog"},
            {"request_id": "r2", "label": "fox"},  # repeated in one request: the last one wins
        ],
    )
    assert body == {"received": 3, "stored": 1, "corrected": 0, "duplicates": 2, "pending": 0}
    body = send_labels(client, {"request_id": "r1", "label": "dog"})
    assert body["corrected"] == 1
    rows = joined(client)
    assert rows["label"].to_dict() == {("r1", "champion"): "dog", ("r2", "champion"): "fox"}
    assert stored_labels(client) == 2
    assert sample(client, "driftloop_feedback_corrections_total", {"model": "pets"}) == 1
    detail = client.get("/v1/models/pets").json()["labels"]
    assert detail == {**detail, "stored": 2, "joined": 2, "corrections": 1}


def test_one_label_joins_the_champion_and_its_shadow_copy(client: TestClient) -> None:
    register(client)
    send_records(client, [record("r1", "cat"), record("r1", "dog", variant="shadow", version="v2")])
    send_labels(client, {"request_id": "r1", "label": "dog"})
    rows = joined(client)
    assert rows["prediction"].to_dict() == {("r1", "champion"): "cat", ("r1", "shadow"): "dog"}
    assert set(rows["label"]) == {"dog"}


def test_refused_labels_name_their_rows_and_nothing_is_written(client: TestClient) -> None:
    register(client)
    send_records(client, [record("r1", "cat"), record("r2", "cat")])
    response = client.post(
        "/v1/feedback",
        json=[
            {"request_id": "r1", "label": "cat"},
            {"request_id": "r2", "label": "wolf"},
            {"request_id": "r3", "label": "cat", "model": "nope"},
        ],
    )
    assert response.status_code == 422
    body = response.json()
    assert [(e["row"], e["request_id"]) for e in body["errors"]] == [(1, "r2"), (2, "r3")]
    assert "'wolf' is not a class" in body["detail"]
    assert "unknown model 'nope'" in body["detail"]
    assert stored_labels(client) == 0
    malformed = client.post(
        "/v1/feedback", json=[{"request_id": "ok", "label": "cat"}, {"label": "x"}]
    )
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0] == {
        **malformed.json()["errors"][0],
        "row": 1,
        "field": "request_id",
    }
    assert stored_labels(client) == 0


def test_a_regression_takes_numbers_only(client: TestClient) -> None:
    register(client, "price", kind="regression")
    send_records(client, [record("p1", 10.0, model="price"), record("p2", 12.5, model="price")])
    response = client.post(
        "/v1/feedback",
        json=[
            {"request_id": "p1", "label": 11},
            {"request_id": "p2", "label": "twelve"},
            {"request_id": "p2", "label": True},
        ],
    )
    assert response.status_code == 422
    assert [e["row"] for e in response.json()["errors"]] == [1, 2]
    send_labels(client, [{"request_id": "p1", "label": 11}, {"request_id": "p2", "label": 12.0}])
    assert joined(client, "price")["label"].tolist() == [11.0, 12.0]


def test_a_request_id_logged_by_two_models_needs_the_model_named(client: TestClient) -> None:
    register(client)
    register(client, "other")
    send_records(client, [record("same", "cat"), record("same", "dog", model="other")])
    response = client.post("/v1/feedback", json={"request_id": "same", "label": "cat"})
    assert response.status_code == 422
    assert "several models ['other', 'pets']" in response.json()["detail"]
    send_labels(client, {"request_id": "same", "label": "fox", "model": "other"})
    assert joined(client, "other")["label"].tolist() == ["fox"]
    assert joined(client).empty


def test_files_and_gzip_bodies_are_accepted(sqlite_client: TestClient) -> None:
    client = sqlite_client
    register(client)
    send_records(client, [record(f"r{i}", "cat") for i in range(6)])
    csv = "request_id,label\nr0,cat\nr1,dog\n"
    response = client.post(
        "/v1/feedback?model=pets", content=csv, headers={"content-type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 2
    frame = pd.DataFrame({"request_id": ["r2", "r3"], "label": ["fox", "cat"], "model": "pets"})
    sink = io.BytesIO()
    frame.to_parquet(sink, index=False)
    response = client.post(
        "/v1/feedback",
        content=sink.getvalue(),
        headers={"content-type": "application/vnd.apache.parquet"},
    )
    assert response.status_code == 200, response.text
    body = gzip.compress(json.dumps([{"request_id": "r4", "label": "dog"}]).encode())
    response = client.post(
        "/v1/feedback",
        content=body,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert joined(client)["label"].tolist() == ["cat", "dog", "fox", "cat", "dog"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("request_id,value\nr0,cat\n", "lacks the columns ['label']"),
        ("request_id,label\nr0,cat\nr1,\n", "row 1 label"),
        ("request_id,label\nr0,wolf\n", "'wolf' is not a class"),
    ],
    ids=["no-label-column", "empty-label", "unknown-class"],
)
def test_bad_files_are_refused_naming_the_problem(
    sqlite_client: TestClient, content: str, problem: str
) -> None:
    client = sqlite_client
    register(client)
    send_records(client, [record("r0", "cat"), record("r1", "cat")])
    response = client.post("/v1/feedback", content=content, headers={"content-type": "text/csv"})
    assert response.status_code == 422
    assert problem in response.json()["detail"]
    assert stored_labels(client) == 0


def test_labels_need_the_feedback_scope(sqlite_database_url: str) -> None:
    settings = Settings(
        database_url=sqlite_database_url,
        tokens={"ingest-token": ["ingest"], "label-token": ["feedback"]},
        jobs=JobSettings(enabled=False),
    )
    app = create_app(settings)
    with TestClient(app) as client:
        body = {"request_id": "r1", "label": "cat"}
        assert client.post("/v1/feedback", json=body).status_code == 401
        wrong = {"authorization": "Bearer ingest-token"}
        assert client.post("/v1/feedback", json=body, headers=wrong).status_code == 403
        right = {"authorization": "Bearer label-token"}
        assert client.post("/v1/feedback", json=body, headers=right).status_code == 200
        snapshot = client.post("/v1/models/pets/datasets", json={}, headers=right)
        assert snapshot.status_code == 403
    app.state.driftloop.engine.dispose()
