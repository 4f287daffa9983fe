"""Replay traffic through the sidecar and feed labels back late, as a labeling team would."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field

import httpx

from driftloop.demo.data import Request


@dataclass
class TrafficStats:
    """What the replay saw from the client side."""

    sent: int = 0
    failed: int = 0
    labeled: int = 0
    variants: Counter[str] = field(default_factory=Counter)


class Replay:
    """Sends requests at ``rate`` per second through the sidecar in a background thread and
    posts each request's true label ``label_delay`` seconds later."""

    def __init__(
        self,
        sidecar_url: str,
        monitor_url: str,
        requests: list[Request],
        *,
        rate: float = 40.0,
        label_delay: float = 2.0,
    ) -> None:
        self.sidecar_url = sidecar_url
        self.monitor_url = monitor_url
        self.requests = requests
        self.rate = rate
        self.label_delay = label_delay
        self.position = 0
        self.stats = TrafficStats()
        self._pending: deque[tuple[float, str, str]] = deque()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._send_loop, daemon=True),
            threading.Thread(target=self._label_loop, daemon=True),
        ]

    @property
    def drifted(self) -> bool:
        """Whether the requests being sent now carry the injected drift."""
        index = min(self.position, len(self.requests) - 1)
        return self.requests[index].drifted

    def start(self) -> None:
        """Start sending and labeling."""
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop both loops (pending labels are still posted)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def _send_loop(self) -> None:
        interval = 1.0 / self.rate
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set() and self.position < len(self.requests):
                started = time.monotonic()
                request = self.requests[self.position]
                self.position += 1
                request_id = uuid.uuid4().hex
                try:
                    response = client.post(
                        f"{self.sidecar_url}/predict",
                        json={"inputs": [request.features]},
                        headers={"x-request-id": request_id},
                    )
                    response.raise_for_status()
                    variant = response.headers.get("x-driftloop-variant", "champion")
                    self.stats.sent += 1
                    self.stats.variants[variant] += 1
                    self._pending.append((time.monotonic(), request_id, request.label))
                except httpx.HTTPError:
                    self.stats.failed += 1
                self._stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def _label_loop(self) -> None:
        with httpx.Client(timeout=30) as client:
            while True:
                stopping = self._stop.is_set()
                due = []
                while self._pending and (
                    stopping or time.monotonic() - self._pending[0][0] >= self.label_delay
                ):
                    _at, request_id, label = self._pending.popleft()
                    due.append({"request_id": request_id, "label": label, "model": "iris"})
                if due:
                    try:
                        client.post(f"{self.monitor_url}/v1/feedback", json=due).raise_for_status()
                        self.stats.labeled += len(due)
                    except httpx.HTTPError:
                        self._pending.extendleft(
                            (0.0, d["request_id"], d["label"]) for d in reversed(due)
                        )
                if stopping and not self._pending:
                    return
                time.sleep(0.5)
