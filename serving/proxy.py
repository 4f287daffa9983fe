"""The sidecar's data port: a raw ASGI reverse proxy in front of the champion and challenger.

Per request it only routes, forwards (keep-alive HTTP/1.1 connections per upstream, see
:mod:`.http1`; bodies streamed) and appends each exchange to the crash-safe capture log just
before the last byte goes out (:meth:`.Shipper.offer`). Parsing rows, batching and shipping
happen in the shipper's thread; shadow copies start once the client has its answer
(:mod:`.shadow`).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp
from starlette.types import Receive, Scope, Send

from driftloop.clock import Clock, SystemClock
from driftloop.serving.capture import find_path
from driftloop.serving.core import CaptureCore, valid_request_id
from driftloop.serving.core import request_id as new_request_id
from driftloop.serving.http1 import (
    ConnectFailed,
    Disconnected,
    PayloadBroken,
    Pool,
    Response,
    UpstreamError,
)
from driftloop.serving.layout import infer_layout
from driftloop.serving.metrics import ProxyMetrics
from driftloop.serving.routing import RoutingPolicy, Upstream, choose
from driftloop.serving.shadow import ShadowCopies
from driftloop.serving.shipper import Shipper
from driftloop.serving.upstream import (
    AiohttpResponse,
    make_session,
    send_upstream,
    target_url,
)

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
_ALLOW = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


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
        clock: Clock | None = None,
    ) -> None:
        self.model = model
        self.shipper = shipper
        self.metrics = metrics
        self.clock = clock or SystemClock()
        self.max_capture = max_capture_bytes
        self.core = CaptureCore(model, shipper, max_capture_bytes)
        self._client_args = (max_connections, connect_timeout, read_timeout)
        self._clients: dict[str, aiohttp.ClientSession] = {}  # shadow copies
        self._pools: dict[str, Pool] = {}  # the answering upstreams
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

    def pool(self, url: str) -> Pool:
        """The keep-alive connections to upstream ``url`` (created on first use)."""
        pool = self._pools.get(url)
        if pool is None:
            pool = self._pools[url] = Pool(url, *self._client_args)
        return pool

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
        for pool in self._pools.values():
            await pool.aclose()
        self._pools.clear()

    # -- the request path: route, forward, respond -------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(receive, send)
            elif scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1003})
            return
        start = time.perf_counter()
        timestamp = self.clock.now()
        headers, request_id, minted, sticky = self._headers(scope)
        try:
            body, stream = await self._read_body(receive)
        except _ClientGone:  # nothing to answer, and a truncated body must not be forwarded
            return
        path = scope["path"]
        captured_body = body if self.core.wants(scope["method"]) else None
        if captured_body is None and stream is not None and self.core.wants(scope["method"]):
            self.core.too_large(path)
        if self._sticky_json is not None and body:
            sticky = self._json_key(body, path)
        decision = choose(self._policy, sticky, self._rand)
        exchange = _Exchange(
            decision.variant, decision.upstream, request_id, minted, path, timestamp, start
        )
        if not scope["raw_path"].startswith(b"/"):  # "OPTIONS *" or an absolute-form target
            status = await self._local(scope, exchange, send)
            self._count(exchange, status)
            return
        try:
            response = await self._forward(scope, decision.upstream, headers, body, stream)
        except Exception as exc:  # every failure gets a JSON answer, never a bare 500
            if not isinstance(exc, UpstreamError | aiohttp.ClientError | TimeoutError):
                log.exception("cannot forward %s %s", scope["method"], path)
            status = await self._fail(exc, exchange, captured_body, send)
            self._count(exchange, status)
            return
        status = await self._respond(response, exchange, captured_body, send)
        self._count(exchange, status)
        shadow = decision.shadow
        if shadow is not None and body is not None:
            url = target_url(shadow.url, scope["raw_path"], scope["query_string"])
            capture = captured_body is not None
            self.shadows.start(
                shadow, scope["method"], url, headers, body, request_id, capture, path, minted
            )

    def _headers(self, scope: Scope) -> tuple[list[tuple[bytes, bytes]], bytes, bool, str | None]:
        """Route: the headers to forward, the request id (and whether it was minted) and the
        sticky key of the request."""
        incoming = b""
        sticky: str | None = None
        sticky_header = self._sticky_header
        connection_tokens: set[bytes] = set()
        headers: list[tuple[bytes, bytes]] = []
        for name, value in scope["headers"]:
            if name in _REQUEST_SKIP:
                if name == b"x-request-id":
                    incoming = value
                elif name == b"connection":
                    connection_tokens.update(t.strip().lower() for t in value.split(b","))
                continue
            if name == sticky_header:
                sticky = value.decode("latin-1")
            headers.append((name, value))
        if connection_tokens:
            headers = [(n, v) for n, v in headers if n not in connection_tokens]
        request_id, minted = new_request_id(incoming)
        headers.append((b"x-request-id", request_id))
        return headers, request_id, minted, sticky

    async def _forward(
        self,
        scope: Scope,
        upstream: Upstream,
        headers: list[tuple[bytes, bytes]],
        body: bytes | None,
        stream: AsyncIterator[bytes] | None,
    ) -> Response | AiohttpResponse:
        """Forward: send the request to ``upstream`` (the caller reads the response)."""
        query = scope["query_string"]
        if not upstream.url.startswith("http://"):  # https: aiohttp speaks TLS, http1 does not
            url = target_url(upstream.url, scope["raw_path"], query)
            session = self.client(upstream.url)
            answer = await send_upstream(session, scope["method"], url, headers, body, stream)
            return AiohttpResponse(answer)
        target = scope["raw_path"] + b"?" + query if query else scope["raw_path"]
        return await self.pool(upstream.url).request(scope["method"], target, headers, body, stream)

    async def _respond(
        self,
        response: Response | AiohttpResponse,
        exchange: _Exchange,
        body: bytes | None,
        send: Send,
    ) -> int:
        """Respond: pass the upstream's answer on; the exchange is handed to capture before
        the last byte goes out. An upstream that breaks off a body not yet passed on gets a
        JSON 502 (504 on a timeout); returns the status answered."""
        status = response.status
        out: list[tuple[bytes, bytes]] = [
            (b"x-request-id", exchange.request_id),
            (b"x-driftloop-variant", exchange.variant.encode()),
        ]
        length = -1
        encoding = b""
        for name, value in response.headers:
            name = name.lower()
            if name in _RESPONSE_SKIP:
                continue
            if name == b"content-length":
                length = int(value)
            elif name == b"content-encoding":
                encoding = value.lower()
            out.append((name, value))
        try:
            if 0 <= length <= self.max_capture:
                try:
                    captured = await response.read()
                except (UpstreamError, aiohttp.ClientError, TimeoutError) as exc:
                    log.warning("upstream %s broke off a response: %s", exchange.upstream.url, exc)
                    return await self._fail(exc, exchange, body, send)
                await send({"type": "http.response.start", "status": status, "headers": out})
                self._capture(exchange, body, captured, status, encoding)
                await send({"type": "http.response.body", "body": captured})
            else:
                await self._stream(response, out, send, exchange, body, encoding)
        except (UpstreamError, aiohttp.ClientError, TimeoutError) as exc:
            # The status line went out already: all that is left is to break off the answer.
            self.metrics.upstream_errors.labels(self.model, exchange.variant, "protocol").inc()
            log.warning("upstream %s broke off a streamed response: %s", exchange.upstream.url, exc)
            raise
        finally:
            response.release()
        return status

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
        self,
        response: Response | AiohttpResponse,
        headers: list[tuple[bytes, bytes]],
        send: Send,
        exchange: _Exchange,
        body: bytes | None,
        encoding: bytes,
    ) -> None:
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        kept: list[bytes] | None = []
        size = 0
        last = b""  # held back one chunk: the exchange is logged before the client has it all
        async for chunk in response.iter_chunks():
            if kept is not None:
                size += len(chunk)
                if size <= self.max_capture:
                    kept.append(chunk)
                else:
                    kept = None  # recorded without outputs
            if last:
                await send({"type": "http.response.body", "body": last, "more_body": True})
            last = chunk
        captured = b"".join(kept) if kept is not None else b""
        self._capture(exchange, body, captured, response.status, encoding)
        await send({"type": "http.response.body", "body": last})

    def _json_key(self, body: bytes, path: str) -> str | None:
        field = self._sticky_json
        try:
            document = json.loads(body)
        except ValueError:
            return None
        if isinstance(document, dict) and field in document:
            return str(document[field])
        maker = self.shipper.maker if self.shipper is not None else None
        layout = (maker.layout_of(path) if maker is not None else None) or infer_layout(document)
        rows = find_path(document, layout.input_path) if layout is not None else None
        row = rows[0] if isinstance(rows, list) and rows else rows
        if isinstance(row, dict) and field in row:
            return str(row[field])
        return None

    async def _fail(
        self, exc: BaseException, exchange: _Exchange, body: bytes | None, send: Send
    ) -> int:
        variant, request_id = exchange.variant, exchange.request_id
        if isinstance(
            exc, ConnectFailed | aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError
        ):
            status, reason, message = 502, "connect", "upstream unreachable"
        elif isinstance(exc, TimeoutError):
            status, reason, message = 504, "timeout", "upstream timed out"
        elif isinstance(exc, PayloadBroken | aiohttp.ClientPayloadError):
            status, reason, message = 502, "protocol", "upstream broke off its answer"
        elif isinstance(exc, Disconnected | aiohttp.ServerDisconnectedError):
            status, reason, message = 502, "protocol", "upstream closed the connection unanswered"
        else:
            status, reason, message = 502, "protocol", "upstream failed"
        self.metrics.upstream_errors.labels(self.model, variant, reason).inc()
        answer = _error_body(status, f"{message}: {type(exc).__name__}", request_id)
        start: dict[str, Any] = {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(answer)).encode()),
                (b"x-request-id", request_id),
                (b"x-driftloop-variant", variant.encode()),
            ],
        }
        await send(start)
        self._capture(exchange, body, b"", status, b"")
        await send({"type": "http.response.body", "body": answer})
        return status

    async def _local(self, scope: Scope, exchange: _Exchange, send: Send) -> int:
        """Answer a request whose target is not a path (``OPTIONS *``, absolute-form) here."""
        document: dict[str, Any]
        if scope["method"] == "OPTIONS" and scope["raw_path"] == b"*":
            status, document = 200, {"allow": list(_ALLOW)}
        else:
            status, document = 400, {"error": "the request target must be a path", "status": 400}
        document["request_id"] = exchange.request_id.decode()
        answer = json.dumps(document).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(answer)).encode()),
            (b"x-request-id", exchange.request_id),
        ]
        if status == 200:
            headers.append((b"allow", ", ".join(_ALLOW).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})
        return status

    def _capture(
        self,
        exchange: _Exchange,
        body: bytes | None,
        response_body: bytes,
        status: int,
        encoding: bytes,
    ) -> None:
        if body:
            self.core.offer(
                version=exchange.upstream.version,
                variant=exchange.variant,
                request_id=exchange.request_id,
                minted=exchange.minted,
                path=exchange.path,
                timestamp=exchange.timestamp,
                body=body,
                response=response_body,
                status=status,
                latency_ms=(time.perf_counter() - exchange.start) * 1000.0,
                encoding=encoding,
            )

    def _count(self, exchange: _Exchange, status: int) -> None:
        elapsed = time.perf_counter() - exchange.start
        variant = exchange.variant
        children = self._children.get((variant, status))
        if children is None:
            code = str(status)
            children = self._children[(variant, status)] = (
                self.metrics.requests.labels(self.model, variant, code),
                self.metrics.seconds.labels(self.model, variant, code),
            )
        children[0].inc()
        children[1].observe(elapsed)


class _Exchange:
    """One request on its way through the proxy: who answers it and under which id."""

    __slots__ = ("minted", "path", "request_id", "start", "timestamp", "upstream", "variant")

    def __init__(
        self,
        variant: str,
        upstream: Upstream,
        request_id: bytes,
        minted: bool,
        path: str,
        timestamp: datetime,
        start: float,
    ) -> None:
        self.variant = variant
        self.upstream = upstream
        self.request_id = request_id
        self.minted = minted
        self.path = path
        self.timestamp = timestamp
        self.start = start
