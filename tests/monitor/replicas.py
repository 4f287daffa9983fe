"""Helpers of the replica tests: a round-robin sender over several monitors, a TCP gate that cuts
one monitor off its database, and what a monitor's ``/metrics`` says about its leadership."""

from __future__ import annotations

import contextlib
import gzip
import json
import select
import socket
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from driftloop.serving.sink import HttpSink
from tests.serving.procs import scraped_metric


def leader(url: str) -> bool:
    """True when the monitor at ``url`` says it runs the jobs (``driftloop_leader``)."""
    return scraped_metric(url, "driftloop_leader") == 1.0


def job_runs(url: str, task: str = "drift") -> float:
    """The monitor's successful runs of ``task`` so far (``driftloop_job_runs_total``); the
    drift job runs every ``DRIFTLOOP_JOBS__INTERVAL_SECONDS``."""
    return scraped_metric(url, "driftloop_job_runs_total", task=task, result="ok")


def any_job_runs(url: str) -> float:
    """The monitor's runs of every task, whatever their result."""
    return scraped_metric(url, "driftloop_job_runs_total")


def batch_payload(index: int, size: int) -> tuple[bytes, list[str]]:
    """Batch ``index`` of ``size`` records as a sidecar ships it (gzip JSON) and its request ids."""
    ids = [f"b{index}-r{j}" for j in range(size)]
    now = datetime.now(UTC).isoformat()
    records = [
        {
            "request_id": request_id,
            "model": "iris",
            "version": "v1",
            "variant": "champion",
            "timestamp": now,
            "inputs": {"sepal_length": 5.1 + j % 7, "color": ["red", "blue"][j % 2]},
            "outputs": {"prediction": ["setosa", "virginica"][j % 2]},
            "latency_ms": 1.5,
            "status": 200,
        }
        for j, request_id in enumerate(ids)
    ]
    body = {"batch_id": f"batch-{index}", "source": "test", "records": records}
    return gzip.compress(json.dumps(body).encode()), ids


class RoundRobinSender:
    """Sends numbered batches in a thread, alternating between monitors, as a load balancer in
    front of the replicas would; a batch a monitor does not acknowledge (down, 503) goes to the
    next one, as the sidecar's shipper retries (it sends through the sidecar's :class:`HttpSink`,
    so a batch counts as acknowledged exactly when a sidecar would drop it from its spool).

    ``acknowledged`` holds the request ids of every acknowledged batch; ``failures`` why a
    monitor did not take a batch (``HTTP 503: ...``, ``ConnectError: ...``); ``error`` what
    stopped the sender early (a rejected batch, or one no monitor took within ``give_up`` s).
    """

    def __init__(
        self, urls: Sequence[str], batch_size: int = 50, pause: float = 0.05, give_up: float = 60
    ) -> None:
        self.sinks = [HttpSink(url, timeout=10) for url in urls]
        self.batch_size = batch_size
        self.pause = pause
        self.give_up = give_up
        self.acknowledged: list[str] = []
        self.batches = 0
        self.failures: list[str] = []
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="round-robin-sender", daemon=True)

    def start(self) -> RoundRobinSender:
        self._thread.start()
        return self

    def wait_for(self, batches: int, timeout: float = 60) -> None:
        """Wait until ``batches`` batches in all were acknowledged."""
        deadline = time.monotonic() + timeout
        while self.batches < batches and self.error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.error is None, self.error
        assert self.batches >= batches, f"only {self.batches} of {batches} batches acknowledged"

    def unexpected_failures(self) -> list[str]:
        """Failures that were neither a 503 nor a monitor that was gone (refused, cut off)."""
        return [f for f in self.failures if f.startswith("HTTP ") and not f.startswith("HTTP 503")]

    def stop(self) -> None:
        """Finish the batch under way, stop, and close the connections."""
        self._stop.set()
        self._thread.join(self.give_up + 15)
        for sink in self.sinks:
            sink.close()

    def _run(self) -> None:
        turn = 0
        while not self._stop.is_set():
            payload, ids = batch_payload(self.batches, self.batch_size)
            deadline = time.monotonic() + self.give_up
            while True:
                outcome = self.sinks[turn % len(self.sinks)].send(payload)
                turn += 1
                if outcome.ok:
                    break
                if outcome.kind == "reject" or time.monotonic() > deadline:
                    self.error = f"batch {self.batches}: {outcome.kind}: {outcome.detail}"
                    return
                self.failures.append(outcome.detail[:300])
                if turn % len(self.sinks) == 0:  # every monitor refused it once: back off
                    time.sleep(0.2)
            self.acknowledged.extend(ids)
            self.batches += 1
            time.sleep(self.pause)


class TcpGate:
    """A TCP forwarder from a loopback port to ``target``; :meth:`close` makes it refuse new
    connections (accepted, then closed at once, as a database that went away), :meth:`open`
    lets them through again. Connections already forwarded stay up: the test ends them on the
    server (``pg_terminate_backend``), as a database restart or a failover would."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._done = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, name="tcp-gate", daemon=True)
        self._accepting.start()

    def close(self) -> None:
        """Refuse new connections."""
        self._open.clear()

    def open(self) -> None:
        """Forward new connections again."""
        self._open.set()

    def shutdown(self) -> None:
        """Stop accepting and forwarding."""
        self._done.set()
        self._listener.close()
        self._accepting.join(5)
        for thread in self._threads:
            thread.join(5)

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._done.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            thread = threading.Thread(target=self._pipe, args=(client, upstream), daemon=True)
            thread.start()
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        ends = {client: upstream, upstream: client}
        try:
            while not self._done.is_set():
                readable, _, _ = select.select(list(ends), [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    ends[sock].sendall(data)
        except OSError:
            return
        finally:
            for sock in ends:
                with contextlib.suppress(OSError):
                    sock.close()
