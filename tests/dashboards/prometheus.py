"""A real Prometheus (Debian's ``/usr/bin/prometheus``) on loopback for integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml

from tests.procs import free_port, wait_http


class PrometheusProcess:
    """Prometheus scraping ``targets`` (job name -> host:port list) every second, with rules."""

    def __init__(
        self,
        binary: str,
        workdir: Path,
        targets: dict[str, list[str]],
        rule_files: list[Path],
        interval: str = "1s",
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.targets = targets
        self.rule_files = rule_files
        self.interval = interval
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def config(self) -> dict[str, Any]:
        """The generated ``prometheus.yml``."""
        return {
            "global": {"scrape_interval": self.interval, "evaluation_interval": self.interval},
            "rule_files": [str(p) for p in self.rule_files],
            "scrape_configs": [
                {
                    "job_name": job,
                    "scrape_interval": self.interval,
                    "scrape_timeout": self.interval,
                    "static_configs": [{"targets": hosts}],
                }
                for job, hosts in self.targets.items()
            ],
        }

    def start(self) -> PrometheusProcess:
        """Write the config, start Prometheus and wait until it is ready."""
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config()))
        with (self.workdir / "prometheus.log").open("ab") as log:
            self.process = self._spawn(config, log)
        wait_http(f"{self.url}/-/ready", 60, self.process)
        return self

    def _spawn(self, config: Path, log: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                self.binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def query(self, expr: str) -> dict[str, Any]:
        """``/api/v1/query`` at the current time; raises on an HTTP or PromQL error."""
        response = self.http.get("/api/v1/query", params={"query": expr})
        body: dict[str, Any] = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise AssertionError(f"query {expr!r} failed: {body.get('error', response.text)}")
        return body["data"]

    def get(self, path: str) -> Any:
        """GET an API path and return its ``data``."""
        response = self.http.get(path)
        response.raise_for_status()
        return response.json()["data"]

    def wait_for(self, expr: str, timeout: float = 30.0) -> None:
        """Wait until ``expr`` returns a non-empty result."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.query(expr)["result"]:
                return
            time.sleep(0.5)
        raise TimeoutError(f"{expr} returned nothing within {timeout:.0f} s")

    def stop(self) -> None:
        """Stop Prometheus."""
        self.http.close()
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def __enter__(self) -> PrometheusProcess:
        return self.start()

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()
