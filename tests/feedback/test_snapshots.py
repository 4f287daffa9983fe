"""Dataset snapshots: what is read back equals what was exported; the hash depends on content
only."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import fsspec
import pandas as pd
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from driftloop.cli import app as cli
from driftloop.clock import FrozenClock
from driftloop.feedback import read_snapshot
from driftloop.server import create_app
from driftloop.settings import Settings
from tests.feedback.support import CLASSES, later, record, send_labels, send_records

REFERENCE = pd.DataFrame(
    {"size": [0.5, 1.5, 2.5], "color": ["red", "blue", "red"], "truth": ["cat", "dog", "fox"]}
)


def setup_model(client: TestClient) -> None:
    schema = {
        "features": [
            {"name": "size", "kind": "numerical"},
            {"name": "color", "kind": "categorical"},
        ],
        "prediction": {"kind": "classification", "classes": CLASSES},
        "label_column": "truth",
    }
    assert client.post("/v1/models", json={"name": "pets", "schema": schema}).status_code == 201
    response = client.put(
        "/v1/models/pets/reference",
        content=REFERENCE.to_csv(index=False),
        headers={"content-type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    send_records(
        client,
        [
            record(f"r{i}", "cat", at=later(i), size=float(i), color=["red", "blue"][i % 2])
            for i in range(6)
        ]
        + [
            record("r1", "dog", variant="shadow", version="v2", at=later(1), size=1.0, color="blue")
        ],
    )
    send_labels(client, [{"request_id": f"r{i}", "label": CLASSES[i % 3]} for i in range(5)])


def expected_rows() -> pd.DataFrame:
    production = pd.DataFrame(
        {
            "source": "production",
            "request_id": [f"r{i}" for i in range(5)],
            "version": "v1",
            "variant": "champion",  # the champion's copy of r1, not the shadow's
            "ts": [pd.Timestamp(later(i)) for i in range(5)],
            "label": [CLASSES[i % 3] for i in range(5)],
            "size": [float(i) for i in range(5)],
            "color": [["red", "blue"][i % 2] for i in range(5)],
        }
    )
    reference = pd.DataFrame(
        {
            "source": "reference",
            "request_id": None,
            "version": None,
            "variant": None,
            "ts": pd.NaT,
            "label": REFERENCE["truth"],
            "size": REFERENCE["size"],
            "color": REFERENCE["color"],
        }
    )
    return pd.concat([reference, production], ignore_index=True)


def test_a_snapshot_reads_back_equal_to_what_was_exported(
    client: TestClient, tmp_path: Path
) -> None:
    setup_model(client)
    out = tmp_path / "snapshots"  # the settings' snapshot_dir: requests may write only there
    response = client.post("/v1/models/pets/datasets", json={"out": str(out)})
    assert response.status_code == 201, response.text
    manifest = response.json()
    rows = read_snapshot(manifest)
    expected = expected_rows()
    pd.testing.assert_frame_equal(
        rows.astype(object).where(rows.notna(), None),
        expected.astype(object).where(expected.notna(), None),
        check_dtype=False,
    )
    data = Path(manifest["uri"].removeprefix("file://")).read_bytes()
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["rows"] == 8
    assert manifest["sources"] == {"reference": 3, "production": 5}
    assert manifest["model_versions"] == ["v1", "v2"]
    assert manifest["label_coverage"] == {"labeled": 6, "predictions": 7, "ratio": 6 / 7}
    assert manifest["time_range"]["first"] == later(0).isoformat()
    assert manifest["time_range"]["last"] == later(4).isoformat()
    assert manifest["lineage"]["request_id_column"] == "request_id"
    on_disk = json.loads(Path(manifest["manifest_uri"].removeprefix("file://")).read_text())
    assert on_disk == manifest
    assert client.get(f"/v1/models/pets/datasets/{manifest['snapshot_id']}").json() == manifest
    assert client.get("/v1/models/pets/datasets/nope").status_code == 404


def test_the_hash_depends_on_the_content_only(settings: Settings, tmp_path: Path) -> None:
    clock = FrozenClock(later(3600))
    allowed = settings.model_copy(
        update={"snapshot_allowed_prefixes": ["memory://driftloop-test-snapshots"]}
    )
    app = create_app(allowed, clock=clock)
    with TestClient(app) as client:
        setup_model(client)
        body = {"out": "memory://driftloop-test-snapshots", "since": later(1).isoformat()}
        first = client.post("/v1/models/pets/datasets", json=body).json()
        assert client.post("/v1/models/pets/datasets", json=body).json() == first, "a retry"
        clock.advance(timedelta(minutes=5))
        second = client.post("/v1/models/pets/datasets", json=body).json()
        assert first["snapshot_id"] != second["snapshot_id"]
        assert first["sha256"] == second["sha256"]
        with fsspec.open(second["uri"], "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == second["sha256"]
        send_labels(client, {"request_id": "r1", "label": "fox"})  # a correction: new content
        third = client.post("/v1/models/pets/datasets", json=body).json()
        assert third["sha256"] != second["sha256"]
        shadow = client.post(
            "/v1/models/pets/datasets",
            json={**body, "variant": "shadow", "include_reference": False},
        ).json()
        assert read_snapshot(shadow)[["request_id", "variant", "label"]].values.tolist() == [
            ["r1", "shadow", "fox"]
        ]
        empty = client.post(
            "/v1/models/pets/datasets",
            json={**body, "variant": "challenger", "include_reference": False},
        )
        assert empty.status_code == 422
        assert "no labeled rows" in empty.json()["detail"]
        assert client.post("/v1/models/nope/datasets", json={}).status_code == 404
        as_url = client.post(
            "/v1/models/pets/datasets", json={"out": (tmp_path / "snapshots").as_uri()}
        )
        assert as_url.status_code == 201, as_url.text
        assert as_url.json()["uri"].startswith("file://")
        assert len(read_snapshot(as_url.json())) == 8
        bad = client.post("/v1/models/pets/datasets", json={"out": "nosuchscheme://x"})
        assert bad.status_code == 422
        assert "outside the allowed roots" in bad.json()["detail"]
    fsspec.filesystem("memory").rm("/driftloop-test-snapshots", recursive=True)
    app.state.driftloop.engine.dispose()


def test_the_cli_exports_a_snapshot(sqlite_database_url: str, tmp_path: Path) -> None:
    from driftloop.settings import JobSettings

    app = create_app(Settings(database_url=sqlite_database_url, jobs=JobSettings(enabled=False)))
    with TestClient(app) as client:
        setup_model(client)
    app.state.driftloop.engine.dispose()
    runner = CliRunner()
    args = [
        "dataset",
        "export",
        "--model",
        "pets",
        "--database-url",
        sqlite_database_url,
        "--out",
        str(tmp_path),
        "--no-reference",
    ]
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.output)
    assert manifest["sources"] == {"reference": 0, "production": 5}
    assert len(read_snapshot(manifest)) == 5
    plain = runner.invoke(cli, [*args, "--since", later(3).isoformat()])
    assert plain.exit_code == 0, plain.output
    assert "2 rows (2 production, 0 reference)" in plain.output
    unknown = runner.invoke(
        cli, ["dataset", "export", "--model", "nope", "--database-url", sqlite_database_url]
    )
    assert unknown.exit_code == 2
    bad_time = runner.invoke(cli, [*args, "--since", "yesterday"])
    assert bad_time.exit_code == 2
    assert "ISO 8601" in bad_time.output
