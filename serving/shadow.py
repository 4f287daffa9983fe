"""Shadow copies: the challenger gets the request after the client has the champion's answer.

At most ``limit`` copies are in flight; beyond that a copy is dropped and counted, so a slow or
failing challenger can neither slow nor fail the client, nor pile up work in the proxy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiohttp

from driftloop.clock import Clock
from driftloop.serving.capture import Captured
from driftloop.serving.metrics import ProxyMetrics
from driftloop.serving.routing import Upstream
from driftloop.serving.shipper import Shipper
from driftloop.serving.upstream import send_upstream

__all__ = ["ShadowCopies"]

log = logging.getLogger(__name__)


class ShadowCopies:
    """Sends shadow copies in background tasks and captures their answers as ``shadow``."""

    def __init__(
        self,
        model: str,
        session: Callable[[str], aiohttp.ClientSession],
        shipper: Shipper | None,
        metrics: ProxyMetrics,
        clock: Clock,
        limit: int = 32,
    ) -> None:
        self.model = model
        self.session = session
        self.shipper = shipper
        self.metrics = metrics
        self.clock = clock
        self.limit = limit
        self.inflight = 0
        self.tasks: set[asyncio.Task[None]] = set()

    def start(
        self,
        upstream: Upstream,
        method: str,
        url: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        request_id: bytes,
        capture: bool,
        path: str = "",
        minted: bool = False,
    ) -> None:
        """Send a copy in the background, or drop it (counted) when ``limit`` are in flight."""
        if self.inflight >= self.limit:
            self.metrics.shadow.labels(self.model, "dropped").inc()
            return
        self.inflight += 1
        task = asyncio.get_running_loop().create_task(
            self._copy(upstream, method, url, headers, body, request_id, capture, path, minted)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def wait(self, timeout: float) -> None:
        """Give copies in flight up to ``timeout`` seconds to finish."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)

    async def _copy(
        self,
        upstream: Upstream,
        method: str,
        url: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        request_id: bytes,
        capture: bool,
        path: str,
        minted: bool,
    ) -> None:
        start = time.perf_counter()
        timestamp = self.clock.now()
        try:
            response = await send_upstream(self.session(upstream.url), method, url, headers, body)
            try:
                status = response.status
                content = await response.read()
                encoding = response.headers.get("content-encoding", "").lower().encode()
            finally:
                response.release()
        except (aiohttp.ClientError, TimeoutError) as exc:
            status = 504 if isinstance(exc, TimeoutError) else 502
            content, encoding = b"", b""
        except Exception:  # a shadow copy must never take the proxy down
            log.exception("shadow copy failed")
            status, content, encoding = 502, b"", b""
        finally:
            self.inflight -= 1
        self.metrics.shadow.labels(self.model, "error" if status >= 500 else "ok").inc()
        if self.shipper is not None and capture and body:
            self.shipper.offer(
                Captured(
                    self.model,
                    upstream.version,
                    "shadow",
                    request_id.decode(),
                    timestamp,
                    body,
                    content,
                    status,
                    (time.perf_counter() - start) * 1000.0,
                    encoding,
                    path,
                    minted,
                )
            )
