"""Hardening findings that came from real processes, checked against a real ``driftloop monitor``
on loopback: DNS rebinding and cross-site writes in open mode, reads while a job holds SQLite's
write lock, and webhooks that must not read internal pages back or scan ports."""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from driftloop.clock import FrozenClock
from driftloop.feedback.webhooks import new_secret
from driftloop.server import create_app
from driftloop.settings import JobSettings, Settings
from tests.monitor.api.test_records import batch, make_record
from tests.procs import MonitorProcess, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def shared_sqlite(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One migrated SQLite file for the module's monitor process (a start costs seconds)."""
    folder = tmp_path_factory.mktemp("hardening")
    shutil.copyfile(sqlite_template, folder / "driftloop.db")
    return f"sqlite:///{folder / 'driftloop.db'}"


@pytest.fixture(scope="module")
def monitor(
    shared_sqlite: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MonitorProcess]:
    """An open (token-less) monitor process on SQLite, jobs off, shared by the module."""
    env = {"DRIFTLOOP_JOBS__ENABLED": "false", "DRIFTLOOP_ALLOWED_HOSTS": "[]"}
    logs = tmp_path_factory.mktemp("hardening-logs")
    with MonitorProcess(shared_sqlite, logs, env=env) as process:
        yield process


def test_a_rebound_host_and_a_cross_site_form_post_are_refused_by_a_running_monitor(
    monitor: MonitorProcess,
) -> None:
    with httpx.Client(base_url=monitor.url, timeout=30) as http:
        # DNS rebinding: the browser talks to 127.0.0.1 but sends the attacker's name.
        rebound = http.get("/v1/models", headers={"host": "rebind.attacker.example"})
        assert rebound.status_code == 421
        # A form or fetch() with text/plain from another site (no preflight).
        body = json.dumps(batch([make_record(0)]))
        plain = http.post(
            "/v1/records",
            content=body,
            headers={"content-type": "text/plain", "origin": "https://evil.example"},
        )
        assert plain.status_code in (403, 415)
        blob = http.post(
            "/v1/feedback",
            content=json.dumps([{"request_id": "req-0", "label": "x"}]),
            headers={"origin": "https://evil.example"},
        )
        assert blob.status_code in (403, 415)
        retrain = http.post("/v1/models/iris/retrain", headers={"origin": "null"})
        assert retrain.status_code == 403
        assert "iris" not in {m["name"] for m in http.get("/v1/models").json()}
        preflight = http.options(
            "/v1/records",
            headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
        )
        assert "access-control-allow-origin" not in preflight.headers
        # The same write from a non-browser client on loopback goes through.
        assert http.post(
            "/v1/records", content=body, headers={"content-type": "application/json"}
        ).is_success


def test_reads_answer_while_a_writer_holds_the_sqlite_write_lock(
    monitor: MonitorProcess, shared_sqlite: str
) -> None:
    """A periodic job holds the write lock for its whole run; reads used to queue behind it
    (BEGIN IMMEDIATE) and answer 503 after the 30 s busy timeout."""
    with httpx.Client(base_url=monitor.url, timeout=60) as http:
        records = [make_record(i, model="locked") for i in range(3)]
        assert http.post("/v1/records", json=batch(records)).is_success
        writer = sqlite3.connect(shared_sqlite.removeprefix("sqlite:///"), timeout=30)
        writer.isolation_level = None
        writer.execute("BEGIN IMMEDIATE")  # what a job's transaction holds
        try:
            assert http.get("/readyz").status_code == 200
            listed = http.get("/v1/models")
            assert listed.status_code == 200
            assert "locked" in {m["name"] for m in listed.json()}
            assert http.get("/v1/models/locked").json()["record_count"] == 3
            assert writer.in_transaction, "the write lock was held throughout"
        finally:
            writer.execute("ROLLBACK")
            writer.close()


class InternalPage(BaseHTTPRequestHandler):
    """An internal admin page the monitor can reach and a user must never read through it."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = b"db_password=correct-horse-battery-staple\n"
        self.send_response(404)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        return


@pytest.fixture
def silent_port() -> Iterator[str]:
    """A port that accepts connections and closes them without a word (open, not HTTP)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/admin"
    stop.set()
    thread.join()
    listener.close()


@pytest.fixture
def internal_page() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), InternalPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/admin"
    server.shutdown()
    server.server_close()


def test_webhook_deliveries_never_store_a_body_nor_tell_open_from_closed_ports(
    sqlite_database_url: str, tmp_path: Path, internal_page: str, silent_port: str
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/admin"  # nothing listens there
    settings = Settings(
        database_url=sqlite_database_url,
        jobs=JobSettings(enabled=False),
        snapshot_dir=str(tmp_path / "snapshots"),
        webhook_secret=new_secret(),
        allowed_hosts=["testserver"],
    )
    app = create_app(settings, clock=FrozenClock())
    errors = {}
    with TestClient(app) as client:
        targets = (("page", internal_page), ("closed", closed), ("silent", silent_port))
        for name, url in targets:
            assert client.post("/v1/models", json={"name": name}).status_code == 201
            policy = client.put(f"/v1/models/{name}/retraining", json={"webhook_url": url})
            assert policy.status_code == 200, policy.text
            fired = client.post(f"/v1/models/{name}/retrain", json={"force": True})
            assert fired.status_code == 202, fired.text
            app.state.driftloop.jobs.run_job("webhooks.deliver", app.state.driftloop)
            log = client.get(f"/v1/webhooks/deliveries/{fired.json()['webhook_id']}").json()
            errors[name] = log["attempt_log"][0]["error"]
            assert "correct-horse" not in json.dumps(log)
            assert "correct-horse" not in client.get("/v1/webhooks/deliveries").text
    app.state.driftloop.engine.dispose()
    assert errors["page"] == "HTTP 404"  # the status, never the page's body
    assert "no HTTP response" in errors["closed"]
    # A closed port and an open one that is not HTTP read the same: no port scanning.
    assert errors["closed"] == errors["silent"]


def test_a_metadata_webhook_url_is_refused_by_a_running_monitor(monitor: MonitorProcess) -> None:
    with httpx.Client(base_url=monitor.url, timeout=30) as http:
        assert http.post("/v1/models", json={"name": "hooked"}).status_code == 201
        for url in ("http://169.254.169.254/latest/meta-data/", "http://metadata.google.internal/"):
            refused = http.put("/v1/models/hooked/retraining", json={"webhook_url": url})
            assert refused.status_code == 422, refused.text
        stolen = http.post(
            "/v1/models/hooked/datasets",
            json={"out": "simplecache::http://127.0.0.1:9/" + uuid.uuid4().hex},
        )
        assert stolen.status_code == 422
