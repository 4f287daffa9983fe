"""``DriftloopMiddleware``: the sidecar's capture and shipping inside the model server.

A pure ASGI middleware (the shape of starlette's ``GZipMiddleware``): it wraps ``receive`` to keep
a copy of a JSON request body and ``send`` to keep the response, then queues both once the last
byte has gone out. A BentoML service attaches it with::

    svc.add_asgi_middleware(DriftloopMiddleware, model="iris", version="v3",
                            monitor_url="http://monitor:8080", spool_dir="/var/spool/driftloop")

Each worker process gets its own queue, shipping thread and spool slot (see
:mod:`driftloop.serving.spool`). The shipper starts on the first request or at lifespan start-up
and drains at lifespan shutdown.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from driftloop.clock import Clock, SystemClock
from driftloop.serving.capture import Captured, RecordShape
from driftloop.serving.shipper import Shipper
from driftloop.settings import CaptureSettings

__all__ = ["DriftloopMiddleware"]

_REQUEST_ID = re.compile(rb"^[\x21-\x7e]{1,180}$")


class DriftloopMiddleware:
    """Capture every JSON prediction a model server answers and ship it to the monitor."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        model: str,
        version: str = "champion",
        variant: str = "champion",
        monitor_url: str | None = None,
        token: str | None = None,
        spool_dir: str | None = None,
        capture: CaptureSettings | None = None,
        shape: RecordShape | None = None,
        registry: Any = None,
        methods: tuple[str, ...] = ("POST",),
        clock: Clock | None = None,
        shipper: Shipper | None = None,
    ) -> None:
        """``token`` defaults to ``DRIFTLOOP_MONITOR_TOKEN``; ``registry`` to a private one."""
        self.app = app
        self.model = model
        self.version = version
        self.variant = variant
        self.methods = frozenset(methods)
        self.clock = clock or SystemClock()
        settings = capture or CaptureSettings()
        if spool_dir is not None:
            settings = settings.model_copy(update={"spool_dir": spool_dir})
        self.max_capture = settings.max_body_bytes
        if shipper is None:
            from driftloop.serving.metrics import make_registry
            from driftloop.serving.sidecar import make_shipper

            self.registry = registry if registry is not None else make_registry()
            shipper = make_shipper(
                model,
                monitor_url,
                token if token is not None else os.environ.get("DRIFTLOOP_MONITOR_TOKEN"),
                settings,
                self.registry,
                source="middleware",
            )
        else:
            self.registry = registry
        if shape is not None:
            shipper.shape = shape
        self.shipper = shipper
        self._started = False
        self._lock = threading.Lock()

    def _start(self) -> None:
        with self._lock:
            if not self._started:
                self.shipper.start()
                self._started = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._lifespan_receive(receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self._started:
            self._start()
        start = time.perf_counter()
        request_id = b""
        is_json = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value
            elif name == b"content-type":
                is_json = b"json" in value
        if not request_id or _REQUEST_ID.match(request_id) is None:
            request_id = uuid.uuid4().hex.encode()
            scope = dict(scope)
            scope["headers"] = [*scope["headers"], (b"x-request-id", request_id)]
        if scope["method"] not in self.methods or not is_json:
            await self.app(scope, receive, _with_request_id(send, request_id))
            return
        await _Exchange(self, request_id, start).run(scope, receive, send)

    def _lifespan_receive(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._start()
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(self.shipper.stop)
            return message

        return wrapped


def _with_request_id(send: Send, request_id: bytes) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            kept = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
            message = {**message, "headers": [(b"x-request-id", request_id), *kept]}
        await send(message)

    return wrapped


class _Exchange:
    """One request/response pair being copied."""

    __slots__ = ("body", "encoding", "mw", "over", "request_id", "response", "start", "status")

    def __init__(self, mw: DriftloopMiddleware, request_id: bytes, start: float) -> None:
        self.mw = mw
        self.request_id = request_id
        self.start = start
        self.body: list[bytes] = []
        self.response: list[bytes] = []
        self.status = 500
        self.encoding = b""
        self.over = False  # the request body is over the capture limit: no record

    async def run(self, scope: Scope, receive: Receive, send: Send) -> None:
        timestamp = self.mw.clock.now()
        limit = self.mw.max_capture
        size = [0, 0]

        async def tee_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and not self.over:
                chunk = message.get("body", b"")
                size[0] += len(chunk)
                if size[0] > limit:
                    self.over = True
                else:
                    self.body.append(chunk)
            return message

        async def tee_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
                headers = [(b"x-request-id", self.request_id)]
                for name, value in message.get("headers", []):
                    lower = name.lower()
                    if lower == b"content-encoding":
                        self.encoding = value.lower()
                    if lower != b"x-request-id":
                        headers.append((name, value))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and size[1] <= limit:
                chunk = message.get("body", b"")
                size[1] += len(chunk)
                if size[1] > limit:  # recorded without outputs, like the sidecar does
                    self.response.clear()
                else:
                    self.response.append(chunk)
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self._finish(timestamp)

        await self.mw.app(scope, tee_receive, tee_send)

    def _finish(self, timestamp: Any) -> None:
        mw = self.mw
        if self.over:
            mw.shipper.drop("too_large")
            return
        if not self.body:
            return
        mw.shipper.offer(
            Captured(
                mw.model,
                mw.version,
                mw.variant,
                self.request_id.decode(),
                timestamp,
                b"".join(self.body),
                b"".join(self.response),
                self.status,
                (time.perf_counter() - self.start) * 1000.0,
                self.encoding,
            )
        )
