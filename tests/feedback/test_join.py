"""``labeled_rows`` and ``label_count``: typed columns out of JSON, on both databases alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from driftloop.clock import FrozenClock
from driftloop.feedback import join, label_count, labeled_rows
from driftloop.server import create_app
from driftloop.settings import Settings
from driftloop.store import LabelRow, Model
from driftloop.store.registry import get_model
from tests.feedback.support import joined, later, record, send_labels, send_records


def test_values_keep_their_json_types_and_odd_feature_names_work(client: TestClient) -> None:
    schema = {
        "features": [
            {"name": "amount", "kind": "numerical"},
            {"name": "member", "kind": "categorical"},
            {"name": "zip", "kind": "categorical"},
            {"name": 'say "hi"', "kind": "categorical"},
            {"name": "label", "kind": "categorical"},
        ],
        "prediction": {"kind": "classification", "classes": [0, 1]},
    }
    assert client.post("/v1/models", json={"name": "odd", "schema": schema}).status_code == 201
    inputs = [
        {"amount": 3, "member": True, "zip": 75001, 'say "hi"': "x", "label": "own"},
        {"amount": "n/a", "member": False, "zip": "75002", 'say "hi"': None, "label": "own"},
        {"amount": 2.5, "member": None, "zip": None, 'say "hi"': "y"},
    ]
    records = [
        {
            "request_id": f"q{i}",
            "model": "odd",
            "version": "v1",
            "timestamp": later(i).isoformat(),
            "inputs": row,
            "outputs": {"prediction": i % 2, "probabilities": {"0": 0.4, "1": 0.6}},
        }
        for i, row in enumerate(inputs)
    ]
    send_records(client, records)
    send_labels(client, [{"request_id": f"q{i}", "label": i % 2} for i in range(3)])
    rows = joined(client, "odd").reset_index().sort_values("request_id")
    assert rows["amount"].tolist()[0] == 3.0
    assert rows["amount"].isna().tolist() == [False, True, False], "a string is not a number"
    assert rows["member"].tolist()[:2] == [True, False]
    assert rows["member"].tolist()[2] is None
    assert rows["zip"].tolist()[:2] == [75001, "75002"]
    assert rows['say "hi"'].tolist() == ["x", None, "y"]
    assert rows["input.label"].tolist()[:2] == ["own", "own"]
    assert rows["label"].tolist() == [0, 1, 0]
    assert rows["prediction"].tolist() == [0, 1, 0]
    assert rows["score:0"].tolist() == [0.4] * 3
    assert rows["score:1"].tolist() == [0.6] * 3


def test_a_model_without_declared_features_gets_its_inputs_as_columns(client: TestClient) -> None:
    record = {
        "request_id": "a1",
        "model": "bare",
        "version": "v1",
        "timestamp": later(0).isoformat(),
        "inputs": {"x": 1.5, "y": "blue"},
        "outputs": {"prediction": 2.0},
    }
    send_records(client, [record])
    state = client.app.state.driftloop  # type: ignore[attr-defined]
    with state.sessions.begin() as session:
        get_model(session, "bare").schema = {"prediction": {"kind": "regression"}}
    send_labels(client, {"request_id": "a1", "label": 2.5})
    rows = joined(client, "bare")
    assert rows[["x", "y", "label", "prediction"]].values.tolist() == [[1.5, "blue", 2.5, 2.0]]


@pytest.fixture
def clocked_client(settings: Settings) -> Iterator[TestClient]:
    """The monitor app on a frozen clock."""
    app = create_app(settings, clock=FrozenClock(later(3600)))
    with TestClient(app) as client:
        yield client
    app.state.driftloop.engine.dispose()


def test_label_count_counts_labels_joined_since_a_time(clocked_client: TestClient) -> None:
    client = clocked_client
    clock = client.app.state.driftloop.clock  # type: ignore[attr-defined]
    send_records(
        client,
        [
            {
                "request_id": f"c{i}",
                "model": "counted",
                "version": "v1",
                "timestamp": later(i).isoformat(),
                "inputs": {"x": i},
                "outputs": {"prediction": "a"},
            }
            for i in range(4)
        ],
    )
    send_labels(
        client,
        [
            {"request_id": "c0", "label": "a"},
            {"request_id": "c1", "label": "b"},
            {"request_id": "early", "label": "a"},
        ],
    )
    mark = clock.advance(60)
    send_labels(client, [{"request_id": "c2", "label": "a"}, {"request_id": "c1", "label": "a"}])
    send_records(
        client,
        [
            {
                "request_id": "early",
                "model": "counted",
                "version": "v1",
                "timestamp": later(9).isoformat(),
                "inputs": {"x": 9},
                "outputs": {"prediction": "a"},
            }
        ],
    )
    state = client.app.state.driftloop  # type: ignore[attr-defined]
    with state.sessions() as session:
        model = get_model(session, "counted")
        assert label_count(session, model) == 4
        # c2 is new, c1 was corrected, "early" met its record after the mark.
        assert label_count(session, model, since=mark) == 3
        assert label_count(session, model, since=clock.advance(60)) == 0


def test_a_pending_and_an_own_label_of_one_request_id_join_once_newest_first(
    client: TestClient,
) -> None:
    # Two uploads racing (one naming the model, one not, before the record) can leave both
    # copies stored; the join keeps the one written last.
    send_records(
        client,
        [
            {
                "request_id": "raced",
                "model": "race",
                "version": "v1",
                "timestamp": later(0).isoformat(),
                "inputs": {"x": 1},
                "outputs": {"prediction": "a"},
            }
        ],
    )
    state = client.app.state.driftloop  # type: ignore[attr-defined]
    with state.sessions.begin() as session:
        model = get_model(session, "race")
        for model_id, label, written in ((0, "old", later(10)), (model.id, "new", later(20))):
            session.add(
                LabelRow(
                    model_id=model_id,
                    request_id="raced",
                    label=label,
                    label_ts=written,
                    received_at=written,
                    updated_at=written,
                    corrections=0,
                )
            )
    rows = joined(client, "race")
    assert rows["label"].tolist() == ["new"]


@pytest.fixture
def pg_client(pg_database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The monitor app on PostgreSQL only (the Arrow path)."""
    app = create_app(Settings(database_url=pg_database_url, snapshot_dir=str(tmp_path / "s")))
    with TestClient(app) as client:
        yield client
    app.state.driftloop.engine.dispose()


def test_a_join_read_in_many_batches_equals_one_read_in_one(
    pg_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Documents are parsed batch by batch while the next batch is read: a field whose type
    changes between batches (int then float; number then string) comes out as from one batch."""
    records = []
    for i in range(400):
        row = record(f"r{i:03d}", "cat" if i % 3 else "dog", size=float(i) + 0.5)
        row["inputs"] = {
            "size": i if i < 200 else i + 0.5,  # ints, then floats
            "code": i if i < 300 else f"c{i}",  # numbers, then strings: no single Arrow type
            "color": None if i < 100 else "red",  # null, then strings
        }
        records.append(row)
    send_records(pg_client, records)
    send_labels(pg_client, [{"request_id": f"r{i:03d}", "label": "cat"} for i in range(400)])
    state = pg_client.app.state.driftloop  # type: ignore[attr-defined]

    def read(batch_bytes: int) -> tuple[pd.DataFrame, int]:
        calls: list[int] = []
        monkeypatch.setattr(join, "JOIN_BATCH_BYTES", batch_bytes)
        with state.sessions() as session:
            model = get_model(session, "pets")
            frame = labeled_rows(session, model, progress=lambda done, total: calls.append(done))
        return frame.set_index("request_id").sort_index(), len(calls)

    whole, _ = read(64 << 20)
    parts, progress_calls = read(2048)
    assert progress_calls > 5, "the small hint splits the result into many batches"
    pd.testing.assert_frame_equal(parts, whole)
    assert parts["size"].tolist()[:2] == [0.0, 1.0]
    assert parts["size"].iloc[-1] == 399.5
    # "code" was inferred numerical from the first records: its strings are not numbers.
    assert parts["code"].iloc[:300].tolist() == list(range(300))
    assert parts["code"].iloc[300:].isna().all()
    assert parts["color"].isna().sum() == 100


def test_a_database_error_on_the_arrow_path_is_a_sqlalchemy_error(pg_database_url: str) -> None:
    """The join's own connection fails like any other database call (the API answers 503)."""
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    from driftloop.store import make_engine

    engine = make_engine(pg_database_url.rsplit("/", 1)[0] + "/driftloop_no_such_database")
    try:
        model = Model(id=1, name="m", schema={"prediction": {"kind": "classification"}})
        with Session(engine) as session, pytest.raises(OperationalError, match="no_such"):
            labeled_rows(session, model)
    finally:
        engine.dispose()
