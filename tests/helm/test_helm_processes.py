"""The rendered pods' commands and environments work when run for real.

No cluster here, so the test plays kubelet: it takes the containers the chart renders, resolves
their environment from the rendered Secret and ConfigMap (``secretKeyRef``, ``envFrom``), and runs
their arguments as local processes against the real PostgreSQL: the migration Job, then the
monitor, then a model's sidecar in front of a small HTTP upstream standing in for the Bento. Only
addresses are rewritten (loopback and free ports instead of pod IPs and Service names).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, make_url, text

from tests.conftest import PG_ADMIN_URL
from tests.helm.helm_render import CHART, Rendered, render_chart
from tests.procs import free_port, wait_http

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def _environment(rendered: Rendered, container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet would build it from the rendered objects."""
    secrets = rendered.secret_data()
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        config = rendered.get("ConfigMap", source["configMapRef"]["name"])
        env.update(config["data"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets[ref["name"]][ref["key"]]
    return env


def _replace(args: list[str], flag: str, value: str) -> list[str]:
    out = list(args)
    out[out.index(flag) + 1] = value
    return out


class _Upstream(BaseHTTPRequestHandler):
    """A JSON predictor standing in for the Bento (the sidecar only sees HTTP)."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        rows = body.get("inputs", [body])
        payload = json.dumps({"predictions": [0 for _ in rows]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    """A predictor on a free loopback port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def empty_database(pg_admin: Engine) -> Iterator[str]:
    """A fresh, empty PostgreSQL database (the migration Job creates the schema)."""
    name = f"driftloop_helm_{uuid.uuid4().hex[:10]}"
    with pg_admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield name
    with pg_admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class _Processes:
    """Processes started by a test, all stopped at its end."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.logdir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "driftloop", *args],
            env={"PATH": os.environ["PATH"], **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.running.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.terminate()
        for process in self.running:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[_Processes]:
    """Start processes; every one is stopped when the test ends."""
    group = _Processes(tmp_path)
    yield group
    group.stop_all()


def test_the_rendered_pods_run_migrate_serve_and_proxy(
    empty_database: str, upstream: str, processes: _Processes, tmp_path: Path
) -> None:
    server = make_url(PG_ADMIN_URL)
    values = {
        "postgresql": {"enabled": False},
        "database": {
            "host": server.host or "127.0.0.1",
            "port": server.port or 5432,
            "name": empty_database,
            "user": server.username or "postgres",
            "password": "handed-over-as-PGPASSWORD",
        },
        "monitor": {"settings": {"jobs": {"enabled": False}}},
        "models": {"iris": {"champion": {"version": "3", "image": {"repository": "r/iris"}}}},
    }
    rendered = render_chart(CHART, values)

    # 1. The migration Job (a pre-install hook here: its credentials come from the hook Secret).
    (job,) = rendered.of_kind("Job")
    migrate = job["spec"]["template"]["spec"]["containers"][0]
    env = _environment(rendered, migrate)
    assert env["PGPASSWORD"] == "handed-over-as-PGPASSWORD"
    result = processes.start("migrations", migrate["args"], env).wait(120)
    assert result == 0, (tmp_path / "migrations.log").read_text()

    # 2. The monitor, with the Secret's tokens and the ConfigMap's settings, and 3. the champion's
    # sidecar with the ingest token in front of the stand-in Bento: started together (the sidecar
    # spools until the monitor answers).
    monitor = rendered.get("Deployment", "dl-driftloop-monitor")["spec"]["template"]["spec"]
    container = monitor["containers"][0]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = _replace(_replace(container["args"], "--host", "127.0.0.1"), "--port", str(port))
    monitor_process = processes.start("monitor", args, _environment(rendered, container))

    pod = rendered.get("Deployment", "dl-driftloop-iris")["spec"]["template"]["spec"]
    sidecar = next(c for c in pod["containers"] if c["name"] == "sidecar")
    data_port, admin_port = free_port(), free_port()
    args = sidecar["args"]
    for flag, value in {
        "--host": "127.0.0.1",
        "--port": str(data_port),
        "--admin-port": str(admin_port),
        "--champion": upstream,
        "--monitor": url,
        "--spool-dir": str(tmp_path / "spool"),
    }.items():
        args = _replace(args, flag, value)
    env = _environment(rendered, sidecar)
    tokens = rendered.secret_data()["dl-driftloop"]
    assert env["DRIFTLOOP_MONITOR_TOKEN"] == tokens["ingest-token"]
    env["HOME"] = str(tmp_path)
    sidecar_process = processes.start("sidecar", args, env)

    wait_http(f"{url}/readyz", 60, monitor_process)
    # Writing needs a token the monitor got from the Secret: none is refused, admin passes auth.
    assert httpx.post(f"{url}/v1/models", json={}, timeout=5).status_code == 401
    admin = {"Authorization": f"Bearer {tokens['admin-token']}"}
    answered = httpx.post(f"{url}/v1/models", json={}, headers=admin, timeout=5).status_code
    assert answered not in {401, 403}

    wait_http(f"http://127.0.0.1:{admin_port}/healthz", 60, sidecar_process)
    response = httpx.post(
        f"http://127.0.0.1:{data_port}/predict",
        json={"inputs": [{"sepal_length": 5.1}]},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [0]}
    assert response.headers["x-request-id"]
