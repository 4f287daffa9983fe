"""Assemble and run the sidecar: data port (proxy) and admin port in one event loop.

Both uvicorn servers share the loop; this module owns the signals (SIGTERM/SIGINT stop both),
and on the way out the shipper captures what is queued and spools what it cannot send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from typing import Any

import uvicorn

import driftloop
from driftloop.clock import Clock, SystemClock
from driftloop.serving.admin import AdminApp
from driftloop.serving.metrics import (
    ProxyMetrics,
    ShippingMetrics,
    add_process_metrics,
    make_registry,
)
from driftloop.serving.policy import PolicyPoller
from driftloop.serving.proxy import ProxyApp
from driftloop.serving.routing import Mode, RoutingPolicy, Upstream
from driftloop.serving.shipper import Shipper
from driftloop.serving.sink import HttpSink, Outcome
from driftloop.serving.spool import DiskSpool, MemorySpool, Spool
from driftloop.settings import CaptureSettings, SidecarSettings

__all__ = ["Sidecar", "make_shipper", "policy_from_settings", "run_sidecar"]

log = logging.getLogger(__name__)


class _NullSink:
    """Used when no monitor is configured: every batch is dropped at once (nothing to keep)."""

    def send(self, payload: bytes) -> Outcome:
        return Outcome("ok")

    def close(self) -> None:
        return None


def policy_from_settings(settings: SidecarSettings) -> RoutingPolicy:
    """The initial routing policy, from the flags."""
    champion = Upstream(settings.champion_version, settings.champion_url.rstrip("/"))
    challenger = (
        Upstream(settings.challenger_version, settings.challenger_url.rstrip("/"))
        if settings.challenger_url
        else None
    )
    mode = Mode(settings.mode)
    if mode is Mode.single and challenger is not None:
        mode = Mode.canary
    sticky = settings.sticky_key
    if mode is Mode.ab and sticky is None:
        sticky = "header:X-User-ID"  # A/B means sticky; requests without the key go at random
    if challenger is None and mode is not Mode.single:
        log.warning("mode %s without --challenger: serving the champion only", mode.value)
    return RoutingPolicy(
        mode=mode if challenger is not None else Mode.single,
        champion=champion,
        challenger=challenger,
        weight=settings.weight,
        sticky_key=sticky,
    )


def make_shipper(
    model: str,
    monitor_url: str | None,
    token: str | None,
    capture: CaptureSettings,
    registry: Any,
    *,
    source: str,
) -> Shipper:
    """A shipper to ``monitor_url`` with a disk spool when ``capture.spool_dir`` is set."""
    spool: Spool = (
        DiskSpool(capture.spool_dir, capture.spool_max_bytes, capture.segment_bytes)
        if capture.spool_dir
        else MemorySpool(capture.memory_spool_batches)
    )
    sink = HttpSink(monitor_url, token, capture.timeout_seconds) if monitor_url else _NullSink()
    return Shipper(model, sink, spool, ShippingMetrics(registry), capture, source=source)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to :class:`Sidecar`."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Sidecar:
    """The sidecar's parts, wired from settings; :meth:`serve` runs them until a signal."""

    def __init__(
        self, settings: SidecarSettings, *, registry: Any = None, clock: Clock | None = None
    ) -> None:
        self.settings = settings
        if registry is None:
            registry = make_registry()
            add_process_metrics(registry, driftloop.__version__)
        self.registry = registry
        policy = policy_from_settings(settings)
        self.shipper = make_shipper(
            settings.model,
            settings.monitor_url,
            settings.monitor_token,
            settings.capture,
            self.registry,
            source="sidecar",
        )
        self.metrics = ProxyMetrics(self.registry)
        self.proxy = ProxyApp(
            settings.model,
            policy,
            self.shipper,
            self.metrics,
            max_connections=settings.max_connections,
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.upstream_timeout_seconds,
            shadow_concurrency=settings.shadow_concurrency,
            max_capture_bytes=settings.capture.max_body_bytes,
            clock=clock or SystemClock(),
        )
        known = {policy.champion.version: policy.champion.url}
        if policy.challenger is not None:
            known[policy.challenger.version] = policy.challenger.url
        self.poller = (
            PolicyPoller(
                settings.monitor_url,
                settings.model,
                known,
                self._set_policy,
                self._set_shape,
                self.metrics,
                token=settings.monitor_token,
                interval=settings.poll_seconds,
            )
            if settings.monitor_url
            else None
        )
        self.admin = AdminApp(self.registry, lambda: self.proxy.policy.champion.url, self._status)

    def _set_policy(self, policy: RoutingPolicy) -> None:
        self.proxy.policy = policy

    def _set_shape(self, shape: Any) -> None:
        self.shipper.shape = shape
        self.proxy.input_path = shape.layout.input_path

    def _status(self) -> dict[str, Any]:
        policy = self.proxy.policy
        return {
            "model": self.settings.model,
            "mode": policy.mode.value,
            "weight": policy.weight,
            "revision": policy.revision,
            "champion": policy.champion.version,
            "challenger": policy.challenger.version if policy.challenger else None,
            "spooled_records": self.shipper.spool.records,
        }

    async def serve(self) -> None:
        """Run both ports until SIGTERM/SIGINT, then drain."""
        s = self.settings
        common: dict[str, Any] = {
            "host": s.host,
            "lifespan": "off",
            "access_log": False,
            "log_level": "warning",
            "timeout_graceful_shutdown": 10,
        }
        # The upstream's own Date and Server headers pass through unchanged.
        data = _Server(
            uvicorn.Config(
                self.proxy,
                port=s.port,
                http="httptools",
                backlog=4096,
                server_header=False,
                date_header=False,
                **common,
            )
        )
        admin = _Server(uvicorn.Config(self.admin, port=s.admin_port, http="h11", **common))
        loop = asyncio.get_running_loop()

        def stop() -> None:
            data.should_exit = True
            admin.should_exit = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        self.shipper.start()
        if self.poller is not None:
            await self.poller.poll_once()
            self.poller.start()
        try:
            await asyncio.gather(data.serve(), admin.serve())
        finally:
            if self.poller is not None:
                await self.poller.aclose()
            await self.proxy.aclose()
            await self.admin.aclose()
            await asyncio.to_thread(self.shipper.stop)


def run_sidecar(settings: SidecarSettings) -> None:
    """Run the sidecar in this process (uvloop when available) until it is told to stop."""
    # httpx logs every request at INFO: far too costly (and noisy) on the prediction path.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The shipper thread parses captured bodies; a short switch interval keeps the GIL from
    # holding the event loop for the default 5 ms whenever that thread is busy.
    sys.setswitchinterval(0.0005)
    try:
        import uvloop

        uvloop.run(Sidecar(settings).serve())
    except ImportError:  # pragma: no cover - uvloop is a dependency of uvicorn[standard]
        asyncio.run(Sidecar(settings).serve())
