"""Real processes for integration tests: the monitor as a subprocess on a free loopback port."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from driftloop.demo.procs import free_port, wait_http

__all__ = ["MonitorProcess", "free_port", "need_binary", "wait_http"]


def need_binary(name: str) -> str:
    """The path of executable ``name``; skips (fails under CI) when it is missing."""
    from tests.conftest import need

    path = shutil.which(name)
    need(path is not None, f"{name} is not installed")
    assert path is not None
    return path


class MonitorProcess:
    """``driftloop monitor`` in a subprocess; ``url`` once started. Use as a context manager."""

    def __init__(
        self, database_url: str, logdir: Path, env: dict[str, str] | None = None, port: int = 0
    ) -> None:
        self.database_url = database_url
        self.logdir = logdir
        self.env = env or {}
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    def start(self) -> MonitorProcess:
        """Start the monitor (migrating the database) and wait until it is ready."""
        log = self._log = (self.logdir / f"monitor-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "driftloop",
                "monitor",
                "--port",
                str(self.port),
                "--database-url",
                self.database_url,
                "--migrate",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        wait_http(f"{self.url}/readyz", 60, self.process)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the monitor (SIGKILL with ``sig=signal.SIGKILL``)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> MonitorProcess:
        return self.start()

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()
