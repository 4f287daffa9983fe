"""The demo's training system: a webhook receiver that verifies Driftloop's signed retraining
triggers with the ``standardwebhooks`` reference library and queues them for training.

It is the same contract as ``docs/examples/receiver.py`` (which the webhook tests exercise), cut
down to what the demo needs: verify, deduplicate on ``webhook-id``, hand the trigger over.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


class Receiver:
    """Verified triggers, in arrival order, each once; rejected attempts are counted."""

    def __init__(self, secret: str) -> None:
        self.verifier = Webhook(secret)
        self.triggers: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.seen: set[str] = set()
        self.deliveries = 0
        self.rejected = 0
        self._lock = threading.Lock()

    async def handle(self, request: Request) -> JSONResponse:
        """``POST /webhooks/retrain``: 204-style ack for valid triggers, 401 otherwise."""
        body = await request.body()
        try:
            payload = self.verifier.verify(body, dict(request.headers))
        except WebhookVerificationError as exc:
            with self._lock:
                self.rejected += 1
            return JSONResponse({"detail": str(exc)}, status_code=401)
        webhook_id = request.headers["webhook-id"]
        with self._lock:
            self.deliveries += 1
            new = webhook_id not in self.seen
            self.seen.add(webhook_id)
        if new:
            self.triggers.put((webhook_id, payload))
        return JSONResponse({"ok": True, "webhook_id": webhook_id})

    def app(self) -> Starlette:
        """The receiver as an ASGI app."""
        return Starlette(routes=[Route("/webhooks/retrain", self.handle, methods=["POST"])])


class ReceiverServer:
    """The receiver under uvicorn in a daemon thread, on a loopback port."""

    def __init__(self, receiver: Receiver, port: int) -> None:
        config = uvicorn.Config(
            receiver.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        """Serve in the background."""
        self.thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self.server.should_exit = True
        self.thread.join(timeout=10)
