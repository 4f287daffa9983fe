"""The example receiver (``docs/examples/receiver.py``) run by uvicorn in a thread on loopback."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Self

import httpx
import uvicorn

from driftloop.demo.procs import free_port

RECEIVER_PATH = Path(__file__).resolve().parents[3] / "docs" / "examples" / "receiver.py"


def receiver_module() -> ModuleType:
    """The example receiver, imported from its file in ``docs/examples``."""
    name = "driftloop_example_receiver"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, RECEIVER_PATH)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


class Served:
    """An ASGI app served by uvicorn on ``127.0.0.1:port`` in a thread; the port is fixed
    before it starts, so a sender can be pointed at it while it is still down."""

    def __init__(self, app: Any, port: int | None = None, health: str = "/healthz") -> None:
        self.app = app
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.health = health
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Serve until :meth:`stop`; returns once the app answers its health route."""
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="auto"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + self.health, timeout=1).is_success:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise TimeoutError(f"app on port {self.port} did not start")

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class ReceiverServer(Served):
    """The example receiver with an inbox the test reads."""

    def __init__(self, secrets: list[str], port: int | None = None, on_trigger: Any = None) -> None:
        module = receiver_module()
        self.inbox = module.Inbox()
        super().__init__(module.create_app(secrets, inbox=self.inbox, on_trigger=on_trigger), port)
        self.url = f"{self.base}/webhooks/retrain"

    def received(self) -> dict[str, Any]:
        """What the receiver accepted and rejected so far."""
        snapshot: dict[str, Any] = self.inbox.snapshot()
        return snapshot
