"""``DriftloopMiddleware``: the sidecar's capture and shipping inside the model server.

A pure ASGI middleware (the shape of starlette's ``GZipMiddleware``): it wraps ``receive`` to keep
a copy of a request body and ``send`` to keep the response, and hands both to capture just
before the last byte goes out. The rules (request ids, body limits, what is captured, what is
counted as dropped) are the sidecar's: :mod:`driftloop.serving.core`. A BentoML service attaches
it with::

    svc.add_asgi_middleware(DriftloopMiddleware, model="iris", version="v3",
                            monitor_url="http://monitor:8080", token=os.environ.get(...))

It reads no environment variable itself: configuration is what the service passes. Without a
registered layout it learns each route's arguments from the service's own OpenAPI document
(BentoML 1.4: ``/docs.json``, read through the app on the first request) and the requests.
Each worker process gets its own shipping thread and capture log slot (see
:mod:`driftloop.serving.spool`). The shipper starts on the first request or at lifespan
start-up and drains at lifespan shutdown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from driftloop.clock import Clock, SystemClock
from driftloop.serving.capture import RecordShape
from driftloop.serving.core import CAPTURE_METHODS, CaptureCore, make_shipper, request_id
from driftloop.serving.layout import layouts_from_openapi
from driftloop.serving.shipper import Shipper
from driftloop.settings import CaptureSettings

__all__ = ["DriftloopMiddleware"]

log = logging.getLogger(__name__)

OPENAPI_PATHS = ("/docs.json", "/openapi.json")


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
        methods: tuple[str, ...] = tuple(sorted(CAPTURE_METHODS)),
        clock: Clock | None = None,
        shipper: Shipper | None = None,
    ) -> None:
        """``token`` is the monitor's bearer token; ``registry`` defaults to a private one.
        Without ``monitor_url`` nothing can be sent: records are counted as dropped
        (``no_monitor``)."""
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

            self.registry = registry if registry is not None else make_registry()
            shipper = make_shipper(
                model,
                monitor_url,
                token,
                settings,
                self.registry,
                source="middleware",
                spool_name=f"{model}-{version}-{variant}",
            )
        else:
            self.registry = registry
        if shape is not None:
            shipper.shape = shape
        self.shipper = shipper
        self.core = CaptureCore(model, shipper, self.max_capture, frozenset(self.methods))
        self._started = False
        self._openapi: asyncio.Task[None] | None = None
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
        if self._openapi is None:
            self._openapi = asyncio.get_running_loop().create_task(self._learn_openapi(scope))
        start = time.perf_counter()
        incoming = b""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value
                break
        rid, minted = request_id(incoming)
        if minted:
            scope = dict(scope)
            scope["headers"] = [
                *(h for h in scope["headers"] if h[0] != b"x-request-id"),
                (b"x-request-id", rid),
            ]
        if not self.core.wants(scope["method"]):
            await self.app(scope, receive, _with_request_id(send, rid))
            return
        await _Exchange(self, rid, minted, start).run(scope, receive, send)

    async def _learn_openapi(self, scope: Scope) -> None:
        """Read the service's own OpenAPI document through the app (no network), so each
        route's argument names are known; a registered layout still wins."""
        for path in OPENAPI_PATHS:
            try:
                document = await asyncio.wait_for(self._get(scope, path), 10.0)
            except Exception as exc:  # learning is optional; serving goes on regardless
                log.debug("no OpenAPI document at %s: %s", path, exc)
                continue
            layouts = layouts_from_openapi(document)
            if layouts:
                self.shipper.maker.openapi = layouts
                log.info("driftloop: routes of %s read from %s", self.model, path)
                return

    async def _get(self, scope: Scope, path: str) -> Any:
        """``GET path`` on the wrapped app, as JSON (None unless it answers 200)."""
        sub = {
            **scope,
            "method": "GET",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"accept", b"application/json")],
        }
        status = 0
        chunks: list[bytes] = []
        asked = False

        async def receive() -> Message:
            nonlocal asked
            if asked:
                await asyncio.Event().wait()  # never disconnects while answering
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(sub, receive, send)
        return json.loads(b"".join(chunks)) if status == 200 else None

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

    __slots__ = (
        "body",
        "encoding",
        "minted",
        "mw",
        "over",
        "path",
        "request_id",
        "response",
        "start",
        "status",
    )

    def __init__(
        self, mw: DriftloopMiddleware, request_id: bytes, minted: bool, start: float
    ) -> None:
        self.mw = mw
        self.request_id = request_id
        self.minted = minted
        self.path = ""
        self.start = start
        self.body: list[bytes] = []
        self.response: list[bytes] = []
        self.status = 500
        self.encoding = b""
        self.over = False  # the request body is over the capture limit: no record

    async def run(self, scope: Scope, receive: Receive, send: Send) -> None:
        timestamp = self.mw.clock.now()
        self.path = scope["path"]
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
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self._finish(timestamp)  # logged before the last byte goes out
            await send(message)

        await self.mw.app(scope, tee_receive, tee_send)

    def _finish(self, timestamp: Any) -> None:
        core = self.mw.core
        if self.over:
            core.too_large(self.path)
            return
        if not self.body:
            return
        core.offer(
            version=self.mw.version,
            variant=self.mw.variant,
            request_id=self.request_id,
            minted=self.minted,
            path=self.path,
            timestamp=timestamp,
            body=b"".join(self.body),
            response=b"".join(self.response),
            status=self.status,
            latency_ms=(time.perf_counter() - self.start) * 1000.0,
            encoding=self.encoding,
        )
