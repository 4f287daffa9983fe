"""Start and stop the demo's processes; every process started is stopped on exit or Ctrl-C."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import BinaryIO

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(
    url: str, timeout: float = 60.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until ``url`` answers 2xx; fail early if ``process`` exits."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            response = httpx.get(url, timeout=2.0)
            if response.is_success:
                return
            last = response.status_code
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s (last: {last})")


def _die_with_parent() -> None:
    # Linux: the child gets SIGTERM when the demo dies, even by SIGKILL, so nothing is orphaned.
    if sys.platform == "linux":
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


PR_SET_PDEATHSIG = 1


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (Linux ``/proc``; empty elsewhere).

    BentoML's arbiter starts each worker in a session of its own, so signalling the serve
    command's process group does not reach the workers: when the arbiter is killed before it
    stops them, they would outlive the demo."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found.extend(children)
        todo.extend(children)
    return found


def _signal(pids: list[int], sig: int) -> list[int]:
    """Send ``sig`` to each of ``pids`` (0: only look); the ones that were still there."""
    alive = []
    for pid in pids:
        try:
            os.kill(pid, sig)
            alive.append(pid)
        except ProcessLookupError:
            continue
    return alive


class ProcessGroup:
    """Processes the demo started, stopped together (SIGTERM, then SIGKILL)."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.logs: list[BinaryIO] = []

    def start(
        self, name: str, args: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``args`` with output to ``<logdir>/<name>.log``."""
        log = (self.logdir / f"{name}.log").open("wb")
        self.logs.append(log)
        process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.procs.append((name, process))
        return process

    def driftloop(
        self, name: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a ``driftloop`` sub-command with this interpreter."""
        return self.start(name, [sys.executable, "-m", "driftloop", *args], env)

    def stop(self) -> None:
        """Stop every process, newest first, then whatever they started and left behind."""
        family = [pid for _name, process in self.procs for pid in descendants(process.pid)]
        for _name, process in reversed(self.procs):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _name, process in reversed(self.procs):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        left = _signal(family, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = _signal(left, 0)
        _signal(left, signal.SIGKILL)
        self.procs.clear()
        for log in self.logs:
            log.close()
        self.logs.clear()
