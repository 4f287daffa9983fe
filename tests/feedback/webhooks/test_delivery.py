"""Delivery from the outbox: the retry schedule, one webhook-id, endpoint disabling, replay."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from driftloop.clock import FrozenClock
from driftloop.feedback.webhooks import retry_delay
from driftloop.settings import Settings
from tests.feedback.webhooks.conftest import BOTH_DATABASES, SECRET, Monitor, open_monitor

SCHEDULE = [5, 300, 1800, 7200, 18000, 36000, 36000]


class Receiver:
    """A fake transport: answers ``status`` and keeps what it was sent."""

    def __init__(self) -> None:
        self.status = 503
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, text="busy" if self.status >= 400 else "ok")


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def monitor(
    webhook_settings: Settings, frozen_clock: FrozenClock, receiver: Receiver
) -> Iterator[Monitor]:
    yield from open_monitor(webhook_settings, frozen_clock, httpx.MockTransport(receiver))


def due_in(monitor: Monitor, webhook_id: str) -> float:
    due = monitor.delivery(webhook_id)["next_attempt_at"]
    return (datetime.fromisoformat(due) - monitor.clock.now()).total_seconds()


@BOTH_DATABASES
def test_retries_follow_the_schedule_with_jitter_and_one_webhook_id(
    monitor: Monitor, receiver: Receiver
) -> None:
    webhook_id = monitor.fire()["webhook_id"]
    for attempt, delay in enumerate(SCHEDULE, start=1):
        monitor.deliver()
        assert len(receiver.requests) == attempt
        wait = due_in(monitor, webhook_id)
        assert 0.9 * delay <= wait <= 1.1 * delay, (attempt, wait)
        monitor.clock.advance(wait - 1)
        monitor.deliver()  # not due yet: nothing sent
        assert len(receiver.requests) == attempt
        monitor.clock.advance(1)
    monitor.deliver()
    log = monitor.delivery(webhook_id)
    assert log["status"] == "failed"
    assert [a["outcome"] for a in log["attempt_log"]] == ["retrying"] * 7 + ["failed"]
    # Status only: the receiver's body ("busy") is never stored (it may hold anything).
    assert all(a["status_code"] == 503 and a["error"] == "HTTP 503" for a in log["attempt_log"])
    assert {r.headers["webhook-id"] for r in receiver.requests} == {webhook_id}
    assert len({r.headers["webhook-timestamp"] for r in receiver.requests}) == 8
    assert monitor.metric("driftloop_webhook_deliveries_total", result="retrying") == 7
    assert monitor.metric("driftloop_webhook_deliveries_total", result="failed") == 1
    assert monitor.metric("driftloop_webhook_failed_messages") == 1
    assert monitor.metric("driftloop_webhook_attempt_duration_seconds_count") == 8

    receiver.status = 200
    replayed = monitor.client.post(f"/v1/webhooks/deliveries/{webhook_id}/replay")
    assert replayed.status_code == 202
    assert replayed.json()["status"] == "pending"
    monitor.deliver()
    log = monitor.delivery(webhook_id)
    assert log["status"] == "delivered"
    assert len(log["attempt_log"]) == 9
    last = receiver.requests[-1]
    assert last.headers["webhook-id"] == webhook_id
    assert last.content == receiver.requests[0].content
    assert monitor.metric("driftloop_webhook_deliveries_total", result="delivered") == 1
    assert monitor.metric("driftloop_webhook_pending_messages") == 0
    assert monitor.metric("driftloop_webhook_failed_messages") == 0


def test_every_attempt_is_signed_at_its_own_time(monitor: Monitor, receiver: Receiver) -> None:
    webhook_id = monitor.fire()["webhook_id"]
    monitor.deliver()
    sent = receiver.requests[0]
    assert sent.headers["webhook-timestamp"] == str(int(monitor.clock.now().timestamp()))
    expected = Webhook(SECRET).sign(webhook_id, monitor.clock.now(), sent.content.decode())
    assert sent.headers["webhook-signature"] == expected
    assert sent.headers["content-type"] == "application/json"


@BOTH_DATABASES
def test_an_endpoint_failing_for_five_days_is_disabled_then_reenabled(
    monitor: Monitor, receiver: Receiver
) -> None:
    first = monitor.fire()["webhook_id"]
    monitor.deliver()
    monitor.clock.advance(4 * 86400)
    monitor.deliver()
    assert monitor.client.get("/v1/webhooks/endpoints").json()[0]["enabled"] is True
    monitor.clock.advance(86400)
    second = monitor.fire()["webhook_id"]
    monitor.deliver()
    (endpoint,) = monitor.client.get("/v1/webhooks/endpoints").json()
    assert endpoint["enabled"] is False
    assert "no successful delivery since" in endpoint["disabled_reason"]
    assert monitor.metric("driftloop_webhook_endpoints_disabled") == 1

    monitor.clock.advance(3600)
    sent = len(receiver.requests)
    monitor.deliver()  # held while disabled
    assert len(receiver.requests) == sent
    assert monitor.delivery(second)["status"] == "pending"

    receiver.status = 204
    enabled = monitor.client.post(f"/v1/webhooks/endpoints/{endpoint['id']}/enable")
    assert enabled.status_code == 200
    assert enabled.json()["enabled"] is True
    monitor.deliver()
    assert monitor.delivery(first)["status"] == "delivered"
    assert monitor.delivery(second)["status"] == "delivered"
    assert monitor.metric("driftloop_webhook_endpoints_disabled") == 0


def test_unknown_messages_and_endpoints_are_404(monitor: Monitor) -> None:
    assert monitor.client.get("/v1/webhooks/deliveries/msg_nope").status_code == 404
    replay = monitor.client.post("/v1/webhooks/deliveries/msg_nope/replay")
    assert replay.status_code == 404
    assert "msg_nope" in replay.json()["detail"]
    assert monitor.client.post("/v1/webhooks/endpoints/999/enable").status_code == 404
    bad = monitor.client.get("/v1/webhooks/deliveries", params={"status": "lost"})
    assert bad.status_code == 422
    assert "'lost'" in bad.json()["detail"]


def test_the_delivery_list_filters_by_status_and_model(
    monitor: Monitor, receiver: Receiver
) -> None:
    webhook_id = monitor.fire()["webhook_id"]
    pending = monitor.client.get("/v1/webhooks/deliveries", params={"status": "pending"}).json()
    assert [m["webhook_id"] for m in pending] == [webhook_id]
    assert monitor.client.get("/v1/webhooks/deliveries", params={"model": "other"}).json() == []
    receiver.status = 200
    monitor.deliver()
    delivered = monitor.client.get("/v1/webhooks/deliveries", params={"status": "delivered"})
    assert [m["webhook_id"] for m in delivered.json()] == [webhook_id]


def test_a_missing_secret_is_logged_as_a_failed_attempt_and_retried(
    webhook_settings: Settings, frozen_clock: FrozenClock, receiver: Receiver
) -> None:
    settings = webhook_settings.model_copy(update={"webhook_secret": None})
    for monitor in open_monitor(settings, frozen_clock, httpx.MockTransport(receiver)):
        webhook_id = monitor.fire()["webhook_id"]
        monitor.deliver()
        log = monitor.delivery(webhook_id)
        assert receiver.requests == []
        assert log["status"] == "pending"
        assert "no webhook secret configured" in log["attempt_log"][0]["error"]


def test_retry_delay_stays_within_the_jitter_and_ends_after_the_schedule() -> None:
    rng = random.Random(7)
    for attempt, base in enumerate(SCHEDULE, start=1):
        delays = [retry_delay(attempt, SCHEDULE, 0.1, rng) for _ in range(200)]
        assert all(d is not None and 0.9 * base <= d <= 1.1 * base for d in delays)
        assert len(set(delays)) > 1
    assert retry_delay(len(SCHEDULE) + 1, SCHEDULE, 0.1, rng) is None


def test_an_unusable_url_is_a_failed_attempt_not_a_stuck_message(
    webhook_settings: Settings, frozen_clock: FrozenClock, receiver: Receiver
) -> None:
    settings = webhook_settings.model_copy(update={"webhook_url": "http://[::1/hook"})
    for monitor in open_monitor(settings, frozen_clock, httpx.MockTransport(receiver)):
        webhook_id = monitor.fire()["webhook_id"]
        monitor.deliver()
        log = monitor.delivery(webhook_id)
        assert log["status"] == "pending"
        assert log["attempt_log"][0]["outcome"] == "retrying"
        assert "is not a URL" in log["attempt_log"][0]["error"]
