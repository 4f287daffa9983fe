"""Real processes for the serving integration tests: Bentos and sidecars on loopback ports."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from driftloop.demo.procs import descendants
from tests.procs import free_port, wait_http

FAST_SHIPPING = {
    "DRIFTLOOP_SIDECAR_CAPTURE__BATCH_AGE_SECONDS": "0.2",
    "DRIFTLOOP_SIDECAR_CAPTURE__BACKOFF_BASE_SECONDS": "0.1",
    "DRIFTLOOP_SIDECAR_CAPTURE__BACKOFF_MAX_SECONDS": "0.5",
    "DRIFTLOOP_SIDECAR_POLL_SECONDS": "1",
}


def _signal_each(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


class Proc:
    """A subprocess in its own session with output to a log file; stopped by process group."""

    def __init__(self, name: str, args: list[str], logdir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log = logdir / f"{name}.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
                start_new_session=True,
            )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal the process group and every descendant, and wait (SIGKILL after 15 s).

        BentoML's arbiter starts each worker in a session of its own, so the process group alone
        would leave a "killed" Bento's workers running (and serving, and shipping)."""
        if self.process.poll() is None:
            family = descendants(self.process.pid)
            os.killpg(self.process.pid, sig)
            _signal_each(family, sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            _signal_each(family, signal.SIGKILL)

    def tail(self) -> str:
        """The end of the log, for failure messages."""
        return self.log.read_text(errors="replace")[-3000:]


class BentoProcess(Proc):
    """``bentoml serve TARGET`` on a free port."""

    def __init__(
        self, name: str, target: str, logdir: Path, env: dict[str, str], cwd: str | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.target = target
        args = [sys.executable, "-m", "bentoml", "serve", target, "--host", "127.0.0.1",
                "--port", str(self.port)]  # fmt: skip
        if cwd:
            args += ["--working-dir", cwd]
        super().__init__(name, args, logdir, env)

    def wait(self, timeout: float = 90) -> BentoProcess:
        try:
            wait_http(f"{self.url}/readyz", timeout, self.process)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{self.name} did not start: {exc}\n{self.tail()}") from exc
        return self


class SidecarProcess(Proc):
    """``driftloop sidecar`` with ``args``; ``url`` is the data port, ``admin`` the admin port."""

    def __init__(
        self,
        name: str,
        args: list[str],
        logdir: Path,
        env: dict[str, str] | None = None,
        ports: tuple[int, int] | None = None,
    ) -> None:
        """``ports``: the data and admin ports (default: free ones)."""
        self.port, self.admin_port = ports or (free_port(), free_port())
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        super().__init__(
            name,
            [
                sys.executable,
                "-m",
                "driftloop",
                "sidecar",
                "--port",
                str(self.port),
                "--admin-port",
                str(self.admin_port),
                "--log-level",
                "warning",
                *args,
            ],
            logdir,
            # The capture log's default folder: under this test's folder, not the user's home.
            {**FAST_SHIPPING, "XDG_STATE_HOME": str(logdir / "xdg-state"), **(env or {})},
        )
        try:
            wait_http(f"{self.admin}/healthz", 30, self.process)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{name} did not start: {exc}\n{self.tail()}") from exc

    def __enter__(self) -> SidecarProcess:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        return scraped_metric(self.admin, name, **labels)


def scraped_metric(url: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` in ``url``'s ``/metrics`` whose labels include ``labels``."""
    text = httpx.get(f"{url}/metrics").text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


def record_counts(monitor_url: str, model: str) -> dict[str, Any]:
    """``record_count`` and ``records_by_version`` from the monitor (zero when unknown)."""
    response = httpx.get(f"{monitor_url}/v1/models/{model}", timeout=10)
    if response.status_code == 404:
        return {"record_count": 0, "records_by_version": {}}
    response.raise_for_status()
    data = response.json()
    return {"record_count": data["record_count"], "records_by_version": data["records_by_version"]}


def wait_for_records(
    monitor_url: str, model: str, expected: int, timeout: float = 30
) -> dict[str, Any]:
    """Wait until the monitor holds ``expected`` records of ``model``; return the counts."""
    deadline = time.monotonic() + timeout
    counts = record_counts(monitor_url, model)
    while counts["record_count"] < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        counts = record_counts(monitor_url, model)
    return counts
