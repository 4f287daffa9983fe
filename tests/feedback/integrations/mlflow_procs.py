"""A real ``mlflow server`` (SQLite backend, loopback), MLflow's own client, and a lossy proxy.

MLflow runs from its own venv (``.venv-mlflow``, made by ``scripts/ensure-mlflow.sh``): its
dependencies conflict with Driftloop's pins. ``DRIFTLOOP_MLFLOW_PYTHON`` names another
interpreter with MLflow installed.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.procs import free_port, wait_http

ROOT = Path(__file__).resolve().parents[3]
AGENT = Path(__file__).with_name("mlflow_agent.py")


def mlflow_python() -> str:
    """The interpreter that has MLflow; skips (fails under CI) when there is none."""
    from tests.conftest import need

    python = os.environ.get("DRIFTLOOP_MLFLOW_PYTHON") or str(ROOT / ".venv-mlflow/bin/python")
    need(Path(python).exists(), f"no MLflow venv at {python}: run scripts/ensure-mlflow.sh")
    return python


class MlflowServer:
    """``mlflow server`` on a free loopback port, allowed to call webhooks on loopback."""

    def __init__(self, python: str, workdir: Path) -> None:
        self.python = python
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": self.url,
            # Webhooks to http:// and private addresses are refused by default (SSRF guard).
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            # Without a fixed key every server process encrypts webhook secrets with its own.
            "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": base64.urlsafe_b64encode(
                os.urandom(32)
            ).decode(),
            # MLflow caches the webhook list per event for 60 s by default.
            "MLFLOW_WEBHOOK_CACHE_TTL": "1",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
        }

    def start(self) -> MlflowServer:
        """Start the server and wait until ``/health`` answers."""
        log = (self.workdir / "mlflow-server.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.python,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                f"sqlite:///{self.workdir / 'mlflow.db'}",
                "--artifacts-destination",
                str(self.workdir / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.workdir,
            start_new_session=True,
        )
        log.close()
        wait_http(f"{self.url}/health", 240, self.process)
        return self

    def stop(self) -> None:
        """Stop the server and every process it started."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None


class MlflowAgent:
    """MLflow's Python client in the MLflow venv, one call per line (see ``mlflow_agent.py``)."""

    def __init__(self, python: str, server: MlflowServer) -> None:
        self._log = (server.workdir / "mlflow-agent.log").open("ab")
        self.process = subprocess.Popen(
            [python, str(AGENT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=server.env,
            cwd=server.workdir,
            text=True,
        )
        try:
            self.version: str = self._read()["mlflow"]
        except BaseException:
            self.close()
            raise

    def _read(self) -> Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the MLflow client process exited (see mlflow-agent.log)")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"MLflow client: {answer['error']}")
        return answer["ok"]

    def __call__(self, op: str, **kwargs: Any) -> Any:
        """Run one operation with MLflow's client and return its answer."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, **kwargs}) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        """End the client process."""
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


class LossyProxy:
    """Forwards POSTs to the monitor; told to, answers 503 after forwarding one (a stand-in for a
    network that loses the monitor's answer), which makes MLflow retry the same delivery."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.seen: list[tuple[dict[str, str], bytes, int, int]] = []
        """Every delivery: headers, body, the monitor's status, the status MLflow got."""
        self.lose_next = False
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                forwarded = {k: v for k, v in headers.items() if k.startswith("x-mlflow")}
                forwarded["content-type"] = headers.get("content-type", "application/json")
                answer = httpx.post(
                    proxy.target + self.path, content=body, headers=forwarded, timeout=30
                )
                with proxy._lock:
                    lose, proxy.lose_next = proxy.lose_next, False
                status = 503 if lose else answer.status_code
                proxy.seen.append((headers, body, answer.status_code, status))
                payload = b'{"detail": "lost"}' if lose else answer.content
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
