"""The webhook loop with real HTTP: the example receiver down then up, and a monitor SIGKILLed
between firing and delivery."""

from __future__ import annotations

import gc
import signal
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from driftloop.clock import FrozenClock
from driftloop.settings import Settings
from tests.feedback.webhooks.conftest import BOTH_DATABASES, SECRET, Monitor, open_monitor
from tests.feedback.webhooks.servers import ReceiverServer, receiver_module
from tests.procs import MonitorProcess, free_port

pytestmark = pytest.mark.integration


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"{what} within {timeout} s")


def start(process: MonitorProcess) -> MonitorProcess:
    """Start the monitor; ``MonitorProcess.start`` drops its log file object unclosed (the
    subprocess keeps the descriptor), which warnings-as-errors would turn into a failure."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        return process.start()


def advance_to_due(monitor: Monitor, webhook_id: str) -> None:
    due = datetime.fromisoformat(monitor.delivery(webhook_id)["next_attempt_at"])
    monitor.clock.advance(due - monitor.clock.now())


@BOTH_DATABASES
def test_a_trigger_sent_while_the_receiver_is_down_arrives_once_it_is_up(
    webhook_settings: Settings,
) -> None:
    receiver = ReceiverServer([SECRET])
    settings = webhook_settings.model_copy(update={"webhook_url": receiver.url})
    # Signatures carry the clock's time and the receiver checks it against its own (5 min):
    # start a little in the past so the frozen clock stays near real time across the retries.
    clock = FrozenClock(datetime.now(UTC) - timedelta(seconds=280))
    for monitor in open_monitor(settings, clock):
        trigger = monitor.fire(note="receiver down")
        webhook_id = trigger["webhook_id"]
        monitor.deliver()
        advance_to_due(monitor, webhook_id)
        monitor.deliver()
        log = monitor.delivery(webhook_id)
        assert [a["outcome"] for a in log["attempt_log"]] == ["retrying", "retrying"]
        assert all("no HTTP response" in a["error"] for a in log["attempt_log"])

        with receiver:
            advance_to_due(monitor, webhook_id)
            monitor.deliver()
            assert monitor.delivery(webhook_id)["status"] == "delivered"
            replay = monitor.client.post(f"/v1/webhooks/deliveries/{webhook_id}/replay")
            assert replay.status_code == 202
            monitor.deliver()
            got = receiver.received()

    assert got["rejected"] == []
    assert got["deliveries"] == [webhook_id, webhook_id]
    (message,) = got["messages"]
    body = message["body"]
    assert body["model"] == "iris"
    assert body["reason"] == "manual"
    assert body["trigger_id"] == trigger["id"]
    assert body["evidence"]["note"] == "receiver down"
    assert set(body["dataset"]) >= {"uri", "rows", "time_range", "content_hash", "label_coverage"}
    assert body["callback_url"].endswith("/v1/models/iris/versions")


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # see start()
def test_a_trigger_survives_sigkill_of_the_monitor_and_the_loop_closes(tmp_path: Path) -> None:
    # The restarted monitor's port is known up front: the callback URL in the body must reach it.
    port = free_port()
    receiver = ReceiverServer(
        [SECRET], on_trigger=receiver_module().register_version("http://127.0.0.1:3002")
    )
    env = {
        "DRIFTLOOP_WEBHOOK_URL": receiver.url,
        "DRIFTLOOP_WEBHOOK_SECRET": SECRET,
        "DRIFTLOOP_SNAPSHOT_DIR": str(tmp_path / "snapshots"),
        "DRIFTLOOP_RETRAIN__CALLBACK_BASE_URL": f"http://127.0.0.1:{port}",
        "DRIFTLOOP_WEBHOOKS__TIMEOUT_SECONDS": "2",
    }
    database_url = f"sqlite:///{tmp_path / 'monitor.db'}"
    first = start(MonitorProcess(database_url, tmp_path, env))
    try:
        records = [
            {
                "request_id": f"r{i}",
                "model": "iris",
                "version": "v1",
                "timestamp": datetime.now(UTC).isoformat(),
                "inputs": {"x": float(i)},
                "outputs": {"prediction": "a"},
            }
            for i in range(3)
        ]
        batch = {"batch_id": "b1", "source": "test", "records": records}
        assert httpx.post(f"{first.url}/v1/records", json=batch).status_code == 200
        fired = httpx.post(f"{first.url}/v1/models/iris/retrain", json={"note": "kill me"})
        assert fired.status_code == 202, fired.text
        webhook_id = fired.json()["webhook_id"]
    finally:
        first.stop(signal.SIGKILL)  # the receiver was never up: nothing was delivered

    with receiver:
        second = start(MonitorProcess(database_url, tmp_path, env, port=port))
        try:
            got = wait_for(
                lambda: [
                    m for m in receiver.received()["messages"] if m["webhook_id"] == webhook_id
                ],
                30,
                "the trigger was not delivered after the restart",
            )
            log = httpx.get(f"{second.url}/v1/webhooks/deliveries/{webhook_id}").json()
            challenger = wait_for(
                lambda: [
                    v
                    for v in httpx.get(f"{second.url}/v1/models/iris").json()["versions"]
                    if v["role"] == "challenger"
                ],
                10,
                "the receiver's callback did not register a challenger",
            )
        finally:
            second.stop()
    gc.collect()  # finalize MonitorProcess's log files while the warning filter is on
    assert got[0]["body"]["evidence"]["note"] == "kill me"
    assert receiver.received()["rejected"] == []
    assert log["status"] == "delivered"
    assert log["attempt_log"][-1]["outcome"] == "delivered"
    assert challenger[0]["version"] == f"retrained-{fired.json()['id']}"
    assert challenger[0]["url"] == "http://127.0.0.1:3002"
    assert challenger[0]["provenance"]["webhook_id"] == webhook_id
