"""The sidecar's data port: a raw ASGI reverse proxy in front of the champion and challenger.

Per request it only routes, forwards (one shared keep-alive ``aiohttp.ClientSession`` per
upstream, see :mod:`.upstream`; bodies streamed) and hands the bodies to the shipper's queue after
the last byte went out. Parsing rows, batching and shipping happen in the shipper's thread; shadow
copies start once the client has its answer (:mod:`.shadow`).
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from starlette.types import Receive, Scope, Send

from driftloop.clock import Clock, SystemClock
from driftloop.serving.capture import Captured, find_path
from driftloop.serving.metrics import ProxyMetrics
from driftloop.serving.routing import RoutingPolicy, Upstream, choose
from driftloop.serving.shadow import ShadowCopies
from driftloop.serving.shipper import Shipper
from driftloop.serving.upstream import make_session, send_upstream, target_url

__all__ = ["HOP_BY_HOP", "ProxyApp", "valid_request_id"]

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Not hop-by-hop, but the proxy sets them itself.
_REQUEST_SKIP = HOP_BY_HOP | {b"host", b"content-length", b"x-request-id"}
_RESPONSE_SKIP = HOP_BY_HOP | {b"x-request-id", b"x-driftloop-variant"}
_REQUEST_ID = re.compile(rb"^[\x21-\x7e]{1,180}$")


def valid_request_id(value: bytes) -> bool:
    """True when ``value`` can be a record's request id (printable ASCII, short enough)."""
    return _REQUEST_ID.match(value) is not None


def _error_body(status: int, message: str, request_id: bytes) -> bytes:
    return json.dumps(
        {"error": message, "status": status, "request_id": request_id.decode()}
    ).encode()


class _ClientGone(Exception):
    """The client went away before its request body was complete."""


class ProxyApp:
    """ASGI app forwarding every route to the upstream chosen by the routing policy."""

    def __init__(
        self,
        model: str,
        policy: RoutingPolicy,
        shipper: Shipper | None,
        metrics: ProxyMetrics,
        *,
        max_connections: int = 512,
        connect_timeout: float = 2.0,
        read_timeout: float = 60.0,
        shadow_concurrency: int = 32,
        max_capture_bytes: int = 1 << 20,
        input_path: str = "inputs",
        clock: Clock | None = None,
    ) -> None:
        self.model = model
        self.shipper = shipper
        self.metrics = metrics
        self.clock = clock or SystemClock()
        self.max_capture = max_capture_bytes
        self.input_path = input_path
        self._client_args = (max_connections, connect_timeout, read_timeout)
        self._clients: dict[str, aiohttp.ClientSession] = {}
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self.shadows = ShadowCopies(
            model, self.client, shipper, metrics, self.clock, shadow_concurrency
        )
        self._rand = random.Random()
        self.policy = policy

    # -- policy -------------------------------------------------------------------------------
    @property
    def policy(self) -> RoutingPolicy:
        """The routing policy in force."""
        return self._policy

    @policy.setter
    def policy(self, value: RoutingPolicy) -> None:
        self._policy = value
        key = value.sticky_key
        self._sticky_header = (
            key[7:].lower().encode() if key and key.startswith("header:") else None
        )
        self._sticky_json = key[5:] if key and key.startswith("json:") else None

    def client(self, url: str) -> aiohttp.ClientSession:
        """The shared session of upstream ``url`` (created on first use, on the loop)."""
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = make_session(*self._client_args)
        return client

    async def aclose(self) -> None:
        """Wait briefly for shadow copies, then close every upstream client."""
        await self.shadows.wait(5.0)
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

    # -- the request path ---------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(receive, send)
            elif scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1003})
            return
        start = time.perf_counter()
        timestamp = self.clock.now()
        policy = self._policy
        request_id = b""
        sticky: str | None = None
        sticky_header = self._sticky_header
        is_json = False
        connection_tokens: set[bytes] = set()
        headers: list[tuple[bytes, bytes]] = []
        for name, value in scope["headers"]:
            if name in _REQUEST_SKIP:
                if name == b"x-request-id":
                    request_id = value
                elif name == b"connection":
                    connection_tokens.update(t.strip().lower() for t in value.split(b","))
                continue
            if name == sticky_header:
                sticky = value.decode("latin-1")
            elif name == b"content-type":
                is_json = b"json" in value
            headers.append((name, value))
        if connection_tokens:
            headers = [(n, v) for n, v in headers if n not in connection_tokens]
        if not request_id or not valid_request_id(request_id):
            request_id = uuid.uuid4().hex.encode()
        headers.append((b"x-request-id", request_id))

        try:
            body, stream = await self._read_body(receive)
        except _ClientGone:  # nothing to answer, and a truncated body must not be forwarded
            return
        captured_body = body if is_json else None
        if is_json and (body is None or len(body) > self.max_capture):
            captured_body = None
            if self.shipper is not None:
                self.shipper.drop("too_large")
        if self._sticky_json is not None and body:
            sticky = self._json_key(body)
        decision = choose(policy, sticky, self._rand)
        upstream = decision.upstream
        variant = decision.variant
        path, query = scope["raw_path"], scope["query_string"]
        try:
            response = await send_upstream(
                self.client(upstream.url),
                scope["method"],
                target_url(upstream.url, path, query),
                headers,
                body,
                stream,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            status = await self._fail(exc, variant, request_id, send)
            self._done(
                start, timestamp, variant, upstream, request_id, captured_body, b"", status, b""
            )
            return
        status = response.status
        out: list[tuple[bytes, bytes]] = [
            (b"x-request-id", request_id),
            (b"x-driftloop-variant", variant.encode()),
        ]
        length = -1
        encoding = b""
        for name, value in response.raw_headers:
            name = name.lower()
            if name in _RESPONSE_SKIP:
                continue
            if name == b"content-length":
                length = int(value)
            elif name == b"content-encoding":
                encoding = value.lower()
            out.append((name, value))
        captured = b""
        try:
            if 0 <= length <= self.max_capture:
                captured = await response.read()
                await send({"type": "http.response.start", "status": status, "headers": out})
                await send({"type": "http.response.body", "body": captured})
            else:
                captured = await self._stream(response, out, send)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.metrics.upstream_errors.labels(self.model, variant, "protocol").inc()
            log.warning("upstream %s broke off a response: %s", upstream.url, exc)
            raise
        finally:
            response.release()
        self._done(
            start,
            timestamp,
            variant,
            upstream,
            request_id,
            captured_body,
            captured,
            status,
            encoding,
        )
        shadow = decision.shadow
        if shadow is not None and body is not None:
            url = target_url(shadow.url, path, query)
            self.shadows.start(shadow, scope["method"], url, headers, body, request_id, is_json)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _read_body(
        self, receive: Receive
    ) -> tuple[bytes | None, AsyncIterator[bytes] | None]:
        """The whole body when it fits the capture limit, else a stream of it (not captured)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if not message.get("more_body", False):
                break
            if size > self.max_capture:
                return None, self._rest(chunks, receive)
        return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), None

    @staticmethod
    async def _rest(head: list[bytes], receive: Receive) -> AsyncIterator[bytes]:
        for chunk in head:
            yield chunk
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            yield message.get("body", b"")
            if not message.get("more_body", False):
                return

    async def _stream(
        self, response: aiohttp.ClientResponse, headers: list[tuple[bytes, bytes]], send: Send
    ) -> bytes:
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        kept: list[bytes] | None = []
        size = 0
        async for chunk in response.content.iter_any():
            if kept is not None:
                size += len(chunk)
                if size <= self.max_capture:
                    kept.append(chunk)
                else:
                    kept = None
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return b"".join(kept) if kept is not None else b""

    def _json_key(self, body: bytes) -> str | None:
        field = self._sticky_json
        try:
            document = json.loads(body)
        except ValueError:
            return None
        if isinstance(document, dict) and field in document:
            return str(document[field])
        rows = find_path(document, self.input_path)
        row = rows[0] if isinstance(rows, list) and rows else rows
        if isinstance(row, dict) and field in row:
            return str(row[field])
        return None

    async def _fail(self, exc: BaseException, variant: str, request_id: bytes, send: Send) -> int:
        if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
            status, reason, message = 502, "connect", "upstream unreachable"
        elif isinstance(exc, TimeoutError):
            status, reason, message = 504, "timeout", "upstream timed out"
        else:
            status, reason, message = 502, "protocol", "upstream failed"
        self.metrics.upstream_errors.labels(self.model, variant, reason).inc()
        body = _error_body(status, f"{message}: {type(exc).__name__}", request_id)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id),
                    (b"x-driftloop-variant", variant.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return status

    def _done(
        self,
        start: float,
        timestamp: Any,
        variant: str,
        upstream: Upstream,
        request_id: bytes,
        body: bytes | None,
        response_body: bytes,
        status: int,
        encoding: bytes,
    ) -> None:
        elapsed = time.perf_counter() - start
        children = self._children.get((variant, status))
        if children is None:
            code = str(status)
            children = self._children[(variant, status)] = (
                self.metrics.requests.labels(self.model, variant, code),
                self.metrics.seconds.labels(self.model, variant, code),
            )
        children[0].inc()
        children[1].observe(elapsed)
        if self.shipper is not None and body:
            self.shipper.offer(
                Captured(
                    self.model,
                    upstream.version,
                    variant,
                    request_id.decode(),
                    timestamp,
                    body,
                    response_body,
                    status,
                    elapsed * 1000.0,
                    encoding,
                )
            )
