"""``POST /v1/integrations/mlflow``: MLflow's signed deliveries register challengers; forged,
stale and replayed ones are refused and counted; verdicts and lineage go back via the outbox."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from driftloop.feedback.webhooks.signing import new_secret
from driftloop.settings import MlflowSettings
from tests.feedback.integrations.conftest import (
    SECRET,
    Monitor,
    open_monitor,
    signed,
    version_created,
)

URL = "/v1/integrations/mlflow"
BOTH_DATABASES = pytest.mark.parametrize(
    "database_url", ["sqlite", "postgresql"], indirect=True, ids=["sqlite", "postgresql"]
)


def post(monitor: Monitor, event: dict[str, Any], **kwargs: Any) -> Any:
    kwargs.setdefault("timestamp", int(monitor.clock.now().timestamp()))
    body, headers = signed(event, **kwargs)
    return monitor.client.post(URL, content=body, headers=headers)


def rollout(monitor: Monitor) -> dict[str, Any]:
    response = monitor.client.get("/v1/models/churn/rollout")
    assert response.status_code == 200, response.text
    return dict(response.json())


@BOTH_DATABASES
def test_a_signed_version_created_event_registers_the_challenger_and_starts_its_rollout(
    monitor: Monitor,
) -> None:
    answer = post(monitor, version_created("churn", "2", run_id="run-2"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "registered"
    assert (answer.json()["model"], answer.json()["version"]) == ("churn", "2")
    assert answer.json()["rollout"] == "started"
    started = rollout(monitor)
    assert (started["rollout"]["champion"], started["rollout"]["challenger"]) == ("1", "2")
    versions = {v["version"]: v for v in monitor.client.get("/v1/models/churn").json()["versions"]}
    assert versions["2"]["url"] == "http://serving.test/churn/2"
    assert monitor.counted("registered") == 1

    monitor.deliver()
    assert monitor.mlflow.aliases[("churn", "challenger")] == "2"
    assert monitor.mlflow.version_tags[("churn", "2")]["driftloop.status"] == "in_rollout"
    lineage = monitor.mlflow.run_tags["run-2"]
    assert (lineage["driftloop.model"], lineage["driftloop.version"]) == ("churn", "2")


def test_the_registered_model_maps_by_setting_and_tags_override_version_and_url(
    monitor: Monitor,
) -> None:
    tags = {"driftloop.version": "v2-tagged", "driftloop.url": "http://elsewhere.test/v2"}
    answer = post(monitor, version_created("churn-prod", "7", tags=tags))
    assert answer.status_code == 200, answer.text
    assert (answer.json()["model"], answer.json()["version"]) == ("churn", "v2-tagged")
    assert answer.json()["url"] == "http://elsewhere.test/v2"
    assert rollout(monitor)["rollout"]["challenger"] == "v2-tagged"


def test_an_unknown_model_is_refused_naming_the_fix_and_counted(monitor: Monitor) -> None:
    answer = post(monitor, version_created("fraud", "1"))
    assert answer.status_code == 404
    assert "DRIFTLOOP_MLFLOW__MODELS" in answer.json()["detail"]
    assert monitor.counted("unmapped") == 1


def test_events_that_register_nothing_are_acknowledged_as_ignored(monitor: Monitor) -> None:
    opted_out = version_created("churn", "2", tags={"driftloop.challenger": "false"})
    model_created = {
        "entity": "registered_model",
        "action": "created",
        "timestamp": "t",
        "data": {"name": "churn", "tags": {}, "description": None},
    }
    other_tag = {
        "entity": "model_version_tag",
        "action": "set",
        "timestamp": "t",
        "data": {"name": "churn", "version": "2", "key": "owner", "value": "ml"},
    }
    for event in (opted_out, model_created, other_tag):
        answer = post(monitor, event)
        assert (answer.status_code, answer.json()["outcome"]) == (200, "ignored"), answer.text
    assert monitor.counted("ignored") == 3
    assert monitor.client.get("/v1/models/churn/rollout").status_code == 404


@pytest.mark.parametrize(
    ("tamper", "status", "outcome"),
    [
        ({"secret": "another-secret-0123456789abcdef"}, 401, "bad_signature"),
        (
            {"body": b'{"entity": "model_version", "action": "created", "data": {}}'},
            401,
            "bad_signature",
        ),
        ({"age": 301}, 400, "stale"),
        ({"age": -301}, 400, "stale"),
        ({"drop": "X-MLflow-Signature"}, 400, "malformed"),
        ({"drop": "X-MLflow-Delivery-Id"}, 400, "malformed"),
        ({"timestamp": "yesterday"}, 400, "malformed"),
    ],
    ids=[
        "wrong-secret",
        "tampered-body",
        "stale",
        "from-the-future",
        "unsigned",
        "no-id",
        "bad-timestamp",
    ],
)
def test_a_forged_stale_or_malformed_delivery_is_refused_and_changes_nothing(
    monitor: Monitor, tamper: dict[str, Any], status: int, outcome: str
) -> None:
    now = int(monitor.clock.now().timestamp())
    body, headers = signed(
        version_created("churn", "2"),
        secret=tamper.get("secret", SECRET),
        timestamp=now - tamper.get("age", 0),
    )
    if "drop" in tamper:
        headers.pop(tamper["drop"])
    if "timestamp" in tamper:
        headers["X-MLflow-Timestamp"] = tamper["timestamp"]
    answer = monitor.client.post(URL, content=tamper.get("body", body), headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.json()["outcome"] == outcome
    assert monitor.counted(outcome) == 1
    assert monitor.client.get("/v1/models/churn/rollout").status_code == 404


def test_a_delivery_within_the_tolerance_is_accepted(monitor: Monitor) -> None:
    now = int(monitor.clock.now().timestamp())
    answer = post(monitor, version_created("churn", "2"), timestamp=now - 299)
    assert answer.status_code == 200, answer.text


@BOTH_DATABASES
def test_a_replayed_delivery_is_refused_even_after_the_first_was_acted_on(
    monitor: Monitor,
) -> None:
    now = int(monitor.clock.now().timestamp())
    body, headers = signed(version_created("churn", "2"), timestamp=now)
    assert monitor.client.post(URL, content=body, headers=headers).status_code == 200
    monitor.clock.advance(timedelta(seconds=30))
    again = monitor.client.post(URL, content=body, headers=headers)
    assert again.status_code == 409, again.text
    assert again.json()["outcome"] == "replayed"
    assert "nothing done again" in again.json()["detail"]
    assert [d["decision"] for d in rollout(monitor)["decisions"]] == ["start"]
    assert monitor.counted("replayed") == 1


def test_the_same_version_announced_by_a_second_delivery_is_unchanged(monitor: Monitor) -> None:
    assert post(monitor, version_created("churn", "2")).json()["outcome"] == "registered"
    second = post(monitor, version_created("churn", "2"))  # another delivery id
    assert (second.status_code, second.json()["outcome"]) == (200, "unchanged")
    assert [d["decision"] for d in rollout(monitor)["decisions"]] == ["start"]


def test_a_refused_delivery_leaves_no_trace_so_mlflows_retry_is_processed(
    monitor: Monitor,
) -> None:
    tagged = {
        "entity": "model_version_tag",
        "action": "set",
        "timestamp": "t",
        "data": {"name": "churn", "version": "3", "key": "driftloop.challenger", "value": "true"},
    }
    now = int(monitor.clock.now().timestamp())
    body, headers = signed(tagged, timestamp=now)
    monitor.mlflow.up = False
    down = monitor.client.post(URL, content=body, headers=headers)
    assert down.status_code == 503  # MLflow retries 5xx with the same delivery
    assert "unreachable" in down.json()["detail"]
    assert monitor.counted("mlflow_unreachable") == 1
    monitor.mlflow.up = True
    monitor.mlflow.versions[("churn", "3")] = {
        "name": "churn",
        "version": "3",
        "run_id": "run-3",
        "source": "models:/m-3",
        "tags": [{"key": "driftloop.url", "value": "http://serving.test/tagged/3"}],
    }
    retried = monitor.client.post(URL, content=body, headers=headers)
    assert retried.status_code == 200, retried.text
    assert retried.json()["outcome"] == "registered"
    assert retried.json()["url"] == "http://serving.test/tagged/3"


def test_without_a_secret_every_delivery_is_refused_with_the_setting_to_set(
    mlflow_settings: Any, frozen_clock: Any
) -> None:
    settings = mlflow_settings.model_copy(update={"mlflow": MlflowSettings()})
    for monitor in open_monitor(settings, frozen_clock):
        answer = post(monitor, version_created("churn", "2"))
        assert answer.status_code == 403
        assert "DRIFTLOOP_MLFLOW__WEBHOOK_SECRET" in answer.json()["detail"]
        assert monitor.counted("unconfigured") == 1


def test_the_promotion_is_written_back_with_its_evidence_and_the_alias_moves_last(
    monitor: Monitor,
) -> None:
    assert post(monitor, version_created("churn", "2")).status_code == 200
    monitor.deliver()
    promoted = monitor.client.post(
        "/v1/models/churn/rollout", json={"action": "promote", "reason": "offline evaluation"}
    )
    assert promoted.status_code == 200, promoted.text
    before = len(monitor.mlflow.calls)
    monitor.deliver()
    calls = monitor.mlflow.calls[before:]
    assert calls[-1] == (
        "POST",
        "/registered-models/alias",
        {"name": "churn", "alias": "champion", "version": "2"},
    )
    tags = monitor.mlflow.version_tags[("churn", "2")]
    assert tags["driftloop.verdict"] == "promoted"
    assert tags["driftloop.reason"] == "offline evaluation"
    assert tags["driftloop.decided_by"] == "admin"
    assert tags["driftloop.compared_with"] == "1"
    assert ("churn", "challenger") not in monitor.mlflow.aliases
    monitor.deliver()  # queued once only
    assert monitor.mlflow.calls[before:] == calls


def test_a_rollback_moves_the_rolled_back_alias_and_keeps_another_versions_challenger_alias(
    monitor: Monitor,
) -> None:
    assert post(monitor, version_created("churn", "2")).status_code == 200
    monitor.deliver()
    monitor.mlflow.aliases[("churn", "challenger")] = "5"  # someone moved it meanwhile
    rolled = monitor.client.post("/v1/models/churn/rollout", json={"action": "rollback"})
    assert rolled.status_code == 200, rolled.text
    monitor.deliver()
    assert monitor.mlflow.aliases[("churn", "rolled-back")] == "2"
    assert monitor.mlflow.aliases[("churn", "challenger")] == "5"
    assert monitor.mlflow.version_tags[("churn", "2")]["driftloop.verdict"] == "rolled_back"


def test_a_write_back_waits_in_the_outbox_while_mlflow_is_down_and_arrives_after(
    monitor: Monitor,
) -> None:
    assert post(monitor, version_created("churn", "2")).status_code == 200
    monitor.mlflow.up = False
    monitor.deliver()
    log = monitor.client.get("/v1/webhooks/deliveries", params={"status": "pending"}).json()
    assert [m["webhook_id"] for m in log] == ["mlflow-register-2"]
    assert "MLflow at http://mlflow.test:5000 is unreachable" in log[0]["last_error"]
    monitor.mlflow.up = True
    monitor.clock.advance(timedelta(seconds=10))  # past the first retry (5 s, jittered)
    monitor.deliver()
    delivered = monitor.client.get("/v1/webhooks/deliveries/mlflow-register-2").json()
    assert delivered["status"] == "delivered"
    assert [a["outcome"] for a in delivered["attempt_log"]] == ["retrying", "delivered"]
    assert monitor.mlflow.aliases[("churn", "challenger")] == "2"


def test_the_callback_with_an_mlflow_run_id_tags_that_run_with_the_lineage(
    monitor: Monitor,
) -> None:
    body = {
        "version": "9",
        "url": "http://serving.test/9",
        "mlflow_run_id": "abc123",
        "code_revision": "deadbeef",
    }
    answer = monitor.client.post("/v1/models/churn/versions", json=body)
    assert answer.status_code == 201, answer.text
    assert monitor.client.post("/v1/models/churn/versions", json=body).status_code == 200
    monitor.deliver()
    tags = monitor.mlflow.run_tags["abc123"]
    assert tags["driftloop.model"] == "churn"
    assert tags["driftloop.version"] == "9"
    assert tags["driftloop.code_revision"] == "deadbeef"
    sent = [c for c in monitor.mlflow.calls if c[1] == "/runs/log-batch"]
    assert len(sent) == 1  # the second (identical) registration queued nothing


def test_the_write_back_body_in_the_outbox_lists_idempotent_operations(monitor: Monitor) -> None:
    assert post(monitor, version_created("churn", "2")).status_code == 200
    message = monitor.client.get("/v1/webhooks/deliveries/mlflow-register-2").json()
    operations = json.loads(json.dumps(message["body"]))["operations"]
    assert {op["op"] for op in operations} == {"set_version_tag", "set_alias"}


def test_a_retrained_version_leads_from_its_mlflow_run_to_the_rows_it_was_trained_on(
    mlflow_settings: Any, frozen_clock: Any, tmp_path: Any
) -> None:
    settings = mlflow_settings.model_copy(
        update={
            "webhook_url": "http://trainer.test/retrain",
            "webhook_secret": new_secret(),
            "retrain": mlflow_settings.retrain.model_copy(
                update={"callback_base_url": "http://driftloop.test:8080"}
            ),
            "snapshot_dir": str(tmp_path / "snapshots"),
        }
    )
    for monitor in open_monitor(settings, frozen_clock):
        ts = (monitor.clock.now() - timedelta(seconds=1)).isoformat()
        records = [{"request_id": f"r-{i}", "model": "churn", "version": "1",
                    "variant": "champion", "timestamp": ts, "inputs": {"x": float(i)},
                    "outputs": {"prediction": i % 2}} for i in range(20)]  # fmt: skip
        assert (
            monitor.client.post(
                "/v1/records", json={"batch_id": "b1", "records": records}
            ).status_code
            == 200
        )
        labels = [{"request_id": f"r-{i}", "label": i % 2, "model": "churn"} for i in range(20)]
        assert monitor.client.post("/v1/feedback", json=labels).status_code in (200, 201, 202)
        trigger = monitor.client.post("/v1/models/churn/retrain", json={"note": "weekly"})
        assert trigger.status_code == 202, trigger.text
        fired = trigger.json()

        # The training job tags the version it registers with the webhook it answers.
        event = version_created(
            "churn", "2", run_id="run-7", tags={"driftloop.webhook_id": fired["webhook_id"]}
        )
        answer = post(monitor, event)
        assert answer.status_code == 200, answer.text
        monitor.deliver()
        tags = monitor.mlflow.run_tags["run-7"]
        assert tags["driftloop.trigger_id"] == str(fired["id"])
        assert tags["driftloop.webhook_id"] == fired["webhook_id"]
        assert tags["driftloop.snapshot_id"] == fired["snapshot_id"]
        assert tags["driftloop.dataset_uri"] == fired["dataset"]["uri"]
        assert tags["driftloop.dataset_rows"] == str(fired["dataset"]["rows"])
        assert tags["driftloop.dataset_sha256"] == fired["dataset"]["sha256"]
        lineage_url = tags["driftloop.lineage_url"]
        assert lineage_url == "http://driftloop.test:8080/v1/models/churn/versions/2/lineage"
        lineage = monitor.client.get(lineage_url.removeprefix("http://driftloop.test:8080"))
        assert sorted(lineage.json()["request_ids"]) == sorted(f"r-{i}" for i in range(20))


def test_a_newer_version_supersedes_the_one_in_rollout_and_mlflow_is_told(
    monitor: Monitor,
) -> None:
    assert post(monitor, version_created("churn", "2")).json()["outcome"] == "registered"
    monitor.deliver()
    assert post(monitor, version_created("churn", "3")).json()["outcome"] == "registered"
    monitor.deliver()
    assert rollout(monitor)["rollout"]["challenger"] == "3"
    assert monitor.mlflow.aliases[("churn", "challenger")] == "3"
    assert monitor.mlflow.version_tags[("churn", "2")]["driftloop.status"] == "superseded"
    assert monitor.mlflow.version_tags[("churn", "3")]["driftloop.status"] == "in_rollout"


def test_an_unknown_event_in_register_on_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"unknown event 'model_version\.deleted'"):
        MlflowSettings(register_on=["model_version.deleted"])
