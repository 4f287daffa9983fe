"""The sidecar's admin port: ``/metrics`` (Prometheus), ``/healthz`` (alive), ``/readyz``
(the champion answers)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from starlette.types import Receive, Scope, Send

__all__ = ["AdminApp"]


class AdminApp:
    """A tiny raw ASGI app; ``status`` supplies the JSON details of ``/healthz``."""

    def __init__(
        self,
        registry: Any,
        champion_url: Callable[[], str],
        status: Callable[[], dict[str, Any]],
    ) -> None:
        self.registry = registry
        self.champion_url = champion_url
        self.status = status
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/metrics":
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

            await _respond(send, 200, generate_latest(self.registry), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            await _json(send, 200, {"status": "ok", **self.status()})
        elif path == "/readyz":
            ready, detail = await self._champion_ready()
            await _json(send, 200 if ready else 503, {"ready": ready, "champion": detail})
        else:
            await _json(send, 404, {"error": f"no admin endpoint {path!r}"})

    async def _champion_ready(self) -> tuple[bool, str]:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=2.0, trust_env=False)
        url = self.champion_url().rstrip("/") + "/readyz"
        try:
            response = await self._client.get(url)
        except httpx.HTTPError as exc:
            return False, f"{url}: {type(exc).__name__}"
        # Any answer below 500 proves the upstream is up (a Bento without /readyz says 404).
        return response.status_code < 500, f"{url}: HTTP {response.status_code}"

    async def aclose(self) -> None:
        """Close the readiness client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


async def _json(send: Send, status: int, body: dict[str, Any]) -> None:
    await _respond(send, status, json.dumps(body).encode(), "application/json")


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
