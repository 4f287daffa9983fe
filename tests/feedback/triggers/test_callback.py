"""The training system's callback registers a challenger and starts its rollout; lineage walks
version → trigger → snapshot → request ids."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.feedback.triggers.conftest import Sent, send_labels, send_records
from tests.feedback.webhooks.conftest import BOTH_DATABASES, Monitor


def retrain_and_receive(monitor: Monitor, sent: Sent) -> tuple[dict[str, Any], list[str]]:
    """Fire a trigger on 30 labeled rows; returns the webhook body and the labeled ids."""
    ids = send_records(monitor, 30)
    send_labels(monitor, ids, correct=True)
    monitor.clock.advance(1)
    monitor.fire(note="weekly")
    monitor.deliver()
    body: dict[str, Any] = json.loads(sent.requests[-1].content)
    return body, ids


@BOTH_DATABASES
def test_a_retrained_version_becomes_the_challenger_with_its_lineage(
    monitor: Monitor, sent: Sent
) -> None:
    body, ids = retrain_and_receive(monitor, sent)
    assert body["callback_url"] == "http://127.0.0.1:8080/v1/models/iris/versions"
    registration = {
        "version": "v2",
        "url": "http://127.0.0.1:3002",
        "snapshot_id": body["dataset"]["snapshot_id"],
        "webhook_id": sent.requests[-1].headers["webhook-id"],
        "code_revision": "9f2c1ab",
        "metrics": {"accuracy": 0.97},
    }
    created = monitor.client.post("/v1/models/iris/versions", json=registration)
    assert created.status_code == 201, created.text
    version = created.json()
    assert version["role"] == "challenger"
    assert version["rollout"] == "started"
    assert version["provenance"]["trigger_id"] == body["trigger_id"]
    assert version["provenance"]["code_revision"] == "9f2c1ab"

    routing = monitor.client.get("/v1/models/iris/routing")
    assert routing.status_code == 200, routing.text
    assert routing.json()["challenger"]["version"] == "v2"
    assert routing.json()["champion"]["version"] == "v1"

    again = monitor.client.post("/v1/models/iris/versions", json=registration)
    assert again.status_code == 200
    assert again.json()["rollout"] == "unchanged"

    lineage = monitor.client.get("/v1/models/iris/versions/v2/lineage").json()
    assert lineage["trigger"]["id"] == body["trigger_id"]
    assert lineage["trigger"]["reason"] == "manual"
    assert lineage["trigger"]["webhook_id"] == registration["webhook_id"]
    assert lineage["snapshot"]["snapshot_id"] == registration["snapshot_id"]
    assert lineage["snapshot"]["sha256"] == body["dataset"]["content_hash"].split(":", 1)[1]
    assert sorted(lineage["request_ids"]) == sorted(ids)
    assert lineage["request_count"] == 30
    assert lineage["next_offset"] is None
    # Paginated: pages of 12 walk every request id once.
    pages, offset = [], 0
    while offset is not None:
        page = monitor.client.get(
            "/v1/models/iris/versions/v2/lineage", params={"limit": 12, "offset": offset}
        ).json()
        pages.append(page["request_ids"])
        offset = page["next_offset"]
    assert [len(p) for p in pages] == [12, 12, 6]
    assert sorted(i for p in pages for i in p) == sorted(ids)


def test_registering_the_same_version_with_other_provenance_conflicts(
    monitor: Monitor, sent: Sent
) -> None:
    body, _ = retrain_and_receive(monitor, sent)
    first = {"version": "v2", "snapshot_id": body["dataset"]["snapshot_id"]}
    assert monitor.client.post("/v1/models/iris/versions", json=first).status_code == 201
    other = {**first, "code_revision": "different"}
    conflict = monitor.client.post("/v1/models/iris/versions", json=other)
    assert conflict.status_code == 409
    assert "'v2'" in conflict.json()["detail"]


@pytest.mark.parametrize(
    ("registration", "status", "problem"),
    [
        ({"version": "v3", "snapshot_id": "iris-nope"}, 422, "unknown snapshot_id 'iris-nope'"),
        ({"version": "v3", "trigger_id": 999}, 422, "no trigger 999"),
        ({"version": "v3", "webhook_id": "msg_nope"}, 422, "no webhook 'msg_nope'"),
        ({"version": "has space"}, 422, "version"),
        ({"version": "v3", "colour": "red"}, 422, "Extra inputs"),
    ],
    ids=["snapshot", "trigger", "webhook", "bad-version", "unknown-field"],
)
def test_bad_registrations_are_refused_naming_the_problem(
    monitor: Monitor, registration: dict[str, Any], status: int, problem: str
) -> None:
    response = monitor.client.post("/v1/models/iris/versions", json=registration)
    assert response.status_code == status
    assert problem in response.text
    versions = monitor.client.get("/v1/models/iris").json()["versions"]
    assert "v3" not in [v["version"] for v in versions]


def test_unknown_models_and_versions_are_404(monitor: Monitor) -> None:
    assert (
        monitor.client.post("/v1/models/nope/versions", json={"version": "v1"}).status_code == 404
    )
    missing = monitor.client.get("/v1/models/iris/versions/v9/lineage")
    assert missing.status_code == 404
    assert "'v9'" in missing.json()["detail"]


def test_a_version_without_provenance_has_an_empty_lineage(monitor: Monitor) -> None:
    send_records(monitor, 2)
    lineage = monitor.client.get("/v1/models/iris/versions/v1/lineage").json()
    assert lineage["trigger"] is None
    assert lineage["snapshot"] is None


def test_a_lost_snapshot_file_is_reported_in_the_lineage(monitor: Monitor, sent: Sent) -> None:
    body, _ = retrain_and_receive(monitor, sent)
    registration = {"version": "v2", "snapshot_id": body["dataset"]["snapshot_id"]}
    assert monitor.client.post("/v1/models/iris/versions", json=registration).status_code == 201
    uri = body["dataset"]["uri"]
    Path(uri.removeprefix("file://")).unlink()
    lineage = monitor.client.get("/v1/models/iris/versions/v2/lineage")
    assert lineage.status_code == 200
    assert lineage.json()["request_ids"] is None
    assert "cannot read" in lineage.json()["lineage_error"]
    assert lineage.json()["snapshot"]["snapshot_id"] == registration["snapshot_id"]
