"""A training system's webhook receiver for Driftloop's retraining triggers (an example to copy).

It verifies every request with the ``standardwebhooks`` reference library (signature over
``id.timestamp.body``, any of several secrets during a rotation, timestamps within 5 minutes),
acknowledges duplicates without acting twice (Driftloop delivers at least once and keeps the
``webhook-id`` across retries), and hands each new trigger to ``on_trigger`` — where a real
system would start a training run and, when done, register the new version at the
``callback_url`` in the body (``--register`` does that at once, for demos).

Run it::

    WEBHOOK_SECRET=whsec_... python docs/examples/receiver.py --port 9000 [--register SERVE_URL]

and point the monitor at it: ``DRIFTLOOP_WEBHOOK_URL=http://127.0.0.1:9000/webhooks/retrain``.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Trigger = Callable[[str, dict[str, Any]], None]


class Inbox:
    """Messages accepted so far, deduplicated on ``webhook-id`` (a database table in real life)."""

    def __init__(self, log_path: Path | None = None) -> None:
        self.messages: dict[str, dict[str, Any]] = {}
        self.deliveries: list[str] = []
        self.rejected: list[str] = []
        self.log_path = log_path
        self._lock = threading.Lock()

    def add(self, webhook_id: str, body: dict[str, Any]) -> bool:
        """Record one verified delivery; True when the message is new."""
        with self._lock:
            self.deliveries.append(webhook_id)
            if webhook_id in self.messages:
                return False
            self.messages[webhook_id] = body
            if self.log_path is not None:
                with self.log_path.open("a") as out:
                    out.write(json.dumps({"webhook_id": webhook_id, "body": body}) + "\n")
            return True

    def snapshot(self) -> dict[str, Any]:
        """What was received, for tests and demos."""
        with self._lock:
            return {
                "messages": [{"webhook_id": k, "body": v} for k, v in self.messages.items()],
                "deliveries": list(self.deliveries),
                "rejected": list(self.rejected),
            }


def create_app(
    secrets: list[str], *, on_trigger: Trigger | None = None, inbox: Inbox | None = None
) -> Starlette:
    """The receiver app; ``secrets`` are every ``whsec_`` secret currently accepted."""
    if not secrets:
        raise ValueError("at least one webhook secret is needed")
    verifiers = [Webhook(secret) for secret in secrets]
    box = inbox or Inbox()

    async def retrain(request: Request) -> JSONResponse:
        body = await request.body()
        headers = dict(request.headers)
        payload = None
        errors = []
        for verifier in verifiers:
            try:
                payload = verifier.verify(body, headers)
                break
            except WebhookVerificationError as exc:
                errors.append(str(exc))
        if payload is None:
            box.rejected.append(headers.get("webhook-id", ""))
            return JSONResponse({"detail": "; ".join(sorted(set(errors)))}, status_code=401)
        webhook_id = headers["webhook-id"]
        if box.add(webhook_id, payload) and on_trigger is not None:
            # Acknowledge quickly: real training runs start in the background.
            threading.Thread(target=on_trigger, args=(webhook_id, payload), daemon=True).start()
        return JSONResponse({"ok": True, "webhook_id": webhook_id})

    async def received(_request: Request) -> JSONResponse:
        return JSONResponse(box.snapshot())

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[
            Route("/webhooks/retrain", retrain, methods=["POST"]),
            Route("/received", received, methods=["GET"]),
            Route("/healthz", health, methods=["GET"]),
        ]
    )
    app.state.inbox = box
    return app


def print_trigger(webhook_id: str, payload: dict[str, Any]) -> None:
    """Default action: say what a training system would train on."""
    dataset = payload.get("dataset") or {}
    print(
        f"{webhook_id}: retrain {payload.get('model')} because {payload.get('reason')} "
        f"on {dataset.get('rows')} rows at {dataset.get('uri')}; "
        f"register the new version at {payload.get('callback_url')}",
        flush=True,
    )


def register_version(serve_url: str | None, token: str | None = None) -> Trigger:
    """An ``on_trigger`` that pretends training succeeded and calls back at once: it registers
    version ``retrained-<trigger_id>`` served at ``serve_url``, trained on the webhook's
    snapshot, so the monitor makes it the challenger and starts the rollout (for demos)."""

    def call_back(webhook_id: str, payload: dict[str, Any]) -> None:
        registration: dict[str, Any] = {
            "version": f"retrained-{payload['trigger_id']}",
            "url": serve_url,
            "snapshot_id": (payload.get("dataset") or {}).get("snapshot_id"),
            "webhook_id": webhook_id,
            "code_revision": "example-receiver",
            "metrics": {},
        }
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = httpx.post(
            payload["callback_url"], json=registration, headers=headers, timeout=30
        )
        print(f"{webhook_id}: registered {registration['version']}: HTTP {response.status_code}")

    return call_back


def main() -> None:
    """Command line: ``python receiver.py --port 9000`` with ``WEBHOOK_SECRET`` set."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--log", type=Path, help="append accepted messages to this JSONL file")
    parser.add_argument(
        "--register",
        metavar="SERVE_URL",
        help="call back at once with a 'retrained' version served at SERVE_URL (demo); "
        "the bearer token comes from DRIFTLOOP_MONITOR_TOKEN",
    )
    args = parser.parse_args()
    secrets = os.environ.get("WEBHOOK_SECRET", "").replace(",", " ").split()
    action: Trigger = print_trigger
    if args.register:
        action = register_version(args.register, os.environ.get("DRIFTLOOP_MONITOR_TOKEN"))
    app = create_app(secrets, on_trigger=action, inbox=Inbox(args.log))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
