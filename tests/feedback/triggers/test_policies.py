"""Every retraining policy fires on the real monitor fed with records and labels, once per
incident, and stays quiet in its cooldown."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from tests.feedback.triggers.conftest import (
    Sent,
    evaluate,
    send_labels,
    send_records,
    set_policy,
    triggers,
)
from tests.feedback.webhooks.conftest import BOTH_DATABASES, Monitor


@BOTH_DATABASES
def test_new_labels_fire_after_n_labels_then_wait_for_the_cooldown(
    monitor: Monitor, sent: Sent
) -> None:
    set_policy(monitor, new_labels=20, cooldown_seconds=600)
    ids = send_records(monitor, 40)
    send_labels(monitor, ids[:10], correct=True)
    monitor.clock.advance(1)
    assert evaluate(monitor) == []

    send_labels(monitor, ids[10:20], correct=True)
    monitor.clock.advance(1)
    (fired,) = evaluate(monitor)
    assert fired["reason"] == "new_labels"
    assert fired["evidence"]["new_labels"] == 20
    assert fired["evidence"]["threshold"] == 20
    assert fired["dataset"]["rows"] == 20
    assert fired["dataset"]["label_coverage"]["labeled"] == 20
    assert fired["webhook_id"].startswith("msg_")

    monitor.clock.advance(60)
    send_labels(monitor, ids[20:40], correct=True)
    monitor.clock.advance(1)
    assert evaluate(monitor) == []  # 20 new labels, but in cooldown

    monitor.clock.advance(600)
    (again,) = evaluate(monitor)
    assert again["reason"] == "new_labels"
    assert again["evidence"]["new_labels"] == 20
    assert again["dataset"]["rows"] == 40

    monitor.deliver()
    bodies = [json.loads(r.content) for r in sent.requests]
    assert [b["trigger_id"] for b in bodies] == [fired["id"], again["id"]]
    assert bodies[0]["dataset"]["content_hash"] == "sha256:" + fired["dataset"]["sha256"]


def test_a_schedule_fires_on_its_slots_and_skips_a_slot_in_cooldown(monitor: Monitor) -> None:
    set_policy(monitor, schedule="0 * * * *", cooldown_seconds=5400)
    assert evaluate(monitor) == []  # 00:00 exactly: the next slot is 01:00
    monitor.clock.advance(3600)
    (first,) = evaluate(monitor)
    assert first["reason"] == "schedule"
    assert first["evidence"]["slot"] == "2026-01-01T01:00:00+00:00"
    assert "snapshot_error" in first["evidence"]  # no labeled rows yet: fires all the same
    assert evaluate(monitor) == []
    monitor.clock.advance(3600)
    assert evaluate(monitor) == []  # 02:00 is within 90 minutes of 01:00
    monitor.clock.advance(3600)
    (third,) = evaluate(monitor)
    assert third["evidence"]["slot"] == "2026-01-01T03:00:00+00:00"


@BOTH_DATABASES
def test_degradation_fires_once_per_incident(monitor: Monitor) -> None:
    set_policy(monitor, degradation={"below": 0.8}, cooldown_seconds=600)
    ids = send_records(monitor, 60)
    send_labels(monitor, ids[:40], correct=True)
    monitor.clock.advance(1)
    assert evaluate(monitor) == []  # all correct: accuracy 1

    send_labels(monitor, ids, correct=False)  # corrections: every label now disagrees
    monitor.clock.advance(1)
    (fired,) = evaluate(monitor)
    evidence = fired["evidence"]
    assert fired["reason"] == "degradation"
    assert evidence["metric"] == "accuracy"
    assert evidence["below"] == 0.8
    assert evidence["interval"][1] < 0.8
    assert evidence["n"] == 60
    assert evidence["group"] == "v1/champion"
    accuracy = evidence["performance"]["versions"]["v1"]["champion"]["metrics"]["accuracy"]
    assert accuracy["upper"] == evidence["interval"][1]
    assert "segments" not in evidence["performance"]["versions"]["v1"]["champion"]

    monitor.clock.advance(3600)
    assert evaluate(monitor) == []  # cooldown over, but the same incident is still open

    send_labels(monitor, ids, correct=True)  # the incident closes...
    monitor.clock.advance(1)
    assert evaluate(monitor) == []
    send_labels(monitor, ids, correct=False)  # ...and a new one opens
    monitor.clock.advance(1)
    (second,) = evaluate(monitor)
    assert second["reason"] == "degradation"


def test_debounce_waits_for_the_condition_to_hold(monitor: Monitor) -> None:
    set_policy(monitor, degradation={"below": 0.8}, debounce_seconds=120)
    ids = send_records(monitor, 40)
    send_labels(monitor, ids, correct=False)
    monitor.clock.advance(1)
    assert evaluate(monitor) == []
    monitor.clock.advance(60)
    assert evaluate(monitor) == []
    monitor.clock.advance(60)
    (fired,) = evaluate(monitor)
    assert fired["evidence"]["incident_since"] == "2026-01-01T00:00:01+00:00"


def test_several_conditions_at_once_fire_one_trigger(monitor: Monitor) -> None:
    set_policy(monitor, degradation={"below": 0.8}, new_labels=10, cooldown_seconds=60)
    ids = send_records(monitor, 30)
    send_labels(monitor, ids, correct=False)
    monitor.clock.advance(1)
    (fired,) = evaluate(monitor)
    assert fired["reason"] == "degradation"
    assert fired["evidence"]["also"]["new_labels"]["new_labels"] == 30
    monitor.clock.advance(120)
    assert evaluate(monitor) == []


def test_a_disabled_policy_stays_quiet(monitor: Monitor) -> None:
    set_policy(monitor, enabled=False, new_labels=1)
    ids = send_records(monitor, 5)
    send_labels(monitor, ids, correct=True)
    monitor.clock.advance(1)
    assert evaluate(monitor) == []


@BOTH_DATABASES
def test_manual_triggers_respect_the_cooldown_unless_forced(monitor: Monitor) -> None:
    set_policy(monitor, cooldown_seconds=300)
    ids = send_records(monitor, 10)
    send_labels(monitor, ids, correct=True)
    monitor.clock.advance(1)
    first = monitor.client.post("/v1/models/iris/retrain", json={"note": "new data"})
    assert first.status_code == 202, first.text
    assert first.json()["reason"] == "manual"
    assert first.json()["dataset"]["rows"] == 10

    refused = monitor.client.post("/v1/models/iris/retrain")
    assert refused.status_code == 409
    assert "cooldown until 2026-01-01T00:05:01" in refused.json()["detail"]
    assert refused.headers["retry-after"] == "301"

    forced = monitor.client.post("/v1/models/iris/retrain", json={"force": True})
    assert forced.status_code == 202
    assert forced.json()["evidence"]["forced"] is True
    assert [t["reason"] for t in triggers(monitor)] == ["manual", "manual"]
    assert monitor.metric("driftloop_retrain_triggers_total", model="iris", reason="manual") == 2


def test_a_trigger_without_a_webhook_url_is_logged_without_a_message(monitor: Monitor) -> None:
    monitor.state.settings = monitor.state.settings.model_copy(update={"webhook_url": None})
    fired = monitor.fire()
    assert fired["webhook_id"] is None
    assert fired["delivery"] is None


def test_the_model_page_shows_the_policy_and_last_trigger(monitor: Monitor) -> None:
    set_policy(monitor, new_labels=5, cooldown_seconds=60)
    send_labels(monitor, send_records(monitor, 4), correct=True)
    fired = monitor.fire()
    section = monitor.client.get("/v1/models/iris").json()["retraining"]
    assert section["new_labels"] == 5
    assert section["last_trigger"]["id"] == fired["id"]
    assert datetime.fromisoformat(section["cooldown_until"]) > monitor.clock.now()


@pytest.mark.parametrize(
    ("policy", "problem"),
    [
        ({"schedule": "every tuesday"}, "not a valid cron expression"),
        ({"webhook_secrets": ["hunter2"]}, "must start with 'whsec_'"),
        ({"webhook_url": "ftp://example.com"}, "must be an http"),
        ({"webhook_url": "http://"}, "must be an http"),
        ({"degradation": {"below": 0.8, "above": 0.1}}, "one of 'below'"),
        ({"drift": {"dataset": False}}, "'features'"),
        ({"new_labels": 0}, "greater than 0"),
        ({"cooldown": 5}, "Extra inputs are not permitted"),
    ],
    ids=["cron", "secret", "url", "no-host", "thresholds", "drift", "new-labels", "unknown-field"],
)
def test_bad_policies_are_refused_naming_the_problem(
    monitor: Monitor, policy: dict[str, object], problem: str
) -> None:
    response = monitor.client.put("/v1/models/iris/retraining", json=policy)
    assert response.status_code == 422
    assert problem in response.text


def test_policies_of_unknown_models_are_404(monitor: Monitor) -> None:
    assert monitor.client.get("/v1/models/nope/retraining").status_code == 404
    assert monitor.client.put("/v1/models/nope/retraining", json={}).status_code == 404
    assert monitor.client.post("/v1/models/nope/retrain").status_code == 404


def test_the_policy_view_never_shows_secrets(monitor: Monitor) -> None:
    secret = "whsec_" + "A" * 32
    body = set_policy(monitor, webhook_secrets=[secret], webhook_url="http://train.test/hook")
    assert secret not in json.dumps(body)
    assert body["webhook_secrets"] == 1
    assert body["webhook_secrets_source"] == "policy"
    assert body["webhook_url"] == "http://train.test/hook"
    got = monitor.client.get("/v1/models/iris/retraining").json()
    assert secret not in json.dumps(got)
    assert got["cooldown_seconds"] == 3600
