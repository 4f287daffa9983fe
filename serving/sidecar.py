"""Assemble and run the sidecar: data port (proxy) and admin port in one event loop.

Both uvicorn servers share the loop; this module owns the signals (SIGTERM/SIGINT stop both),
and on the way out the shipper sends what the capture log holds while the monitor answers.
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
from driftloop.errors import ConfigurationError
from driftloop.serving.admin import AdminApp
from driftloop.serving.capture import RecordShape
from driftloop.serving.core import make_shipper
from driftloop.serving.layout import layouts_from_openapi
from driftloop.serving.metrics import ProxyMetrics, add_process_metrics, make_registry
from driftloop.serving.policy import PolicyPoller
from driftloop.serving.proxy import ProxyApp
from driftloop.serving.records import describe
from driftloop.serving.routing import Mode, RoutingPolicy, Upstream
from driftloop.settings import SidecarSettings

__all__ = ["Sidecar", "make_shipper", "policy_from_settings", "run_sidecar"]

log = logging.getLogger(__name__)


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
        if settings.monitor_url is None and not settings.no_capture:
            raise ConfigurationError(
                "the sidecar needs --monitor (DRIFTLOOP_SIDECAR_MONITOR_URL) to record "
                "predictions; pass --no-capture to route without recording anything"
            )
        if registry is None:
            registry = make_registry()
            add_process_metrics(registry, driftloop.__version__)
        self.registry = registry
        policy = policy_from_settings(settings)
        self.shipper = (
            None
            if settings.no_capture
            else make_shipper(
                settings.model,
                settings.monitor_url,
                settings.monitor_token,
                settings.capture,
                self.registry,
                source="sidecar",
                spool_name=f"{settings.model}-{settings.port}",
            )
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

    def _set_shape(self, shape: RecordShape) -> None:
        if self.shipper is not None:
            self.shipper.shape = shape
            log.info("model schema from the monitor: %s", self._layouts_line())

    def _layouts_line(self) -> str:
        if self.shipper is None:
            return "capture off"
        layouts = self.shipper.maker.layouts()
        if not layouts:
            return "none registered: rows are inferred per route from the requests"
        return "; ".join(f"{path} {describe(lay)}" for path, lay in sorted(layouts.items()))

    async def learn_openapi(self) -> bool:
        """Read the champion's OpenAPI document (BentoML 1.4: ``/docs.json``) for the argument
        names of each route; without one, routes are inferred from their requests. True when
        the champion answered (with a document or without one)."""
        if self.shipper is None:
            return True
        import httpx

        base = self.proxy.policy.champion.url.rstrip("/")
        answered = False
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            for path in self.settings.openapi_paths:
                try:
                    response = await client.get(base + path)
                    answered = True
                    document = response.json() if response.status_code == 200 else None
                except httpx.HTTPError as exc:
                    log.debug("no OpenAPI document at %s%s: %s", base, path, exc)
                    continue
                except ValueError:
                    continue
                layouts = layouts_from_openapi(document)
                if layouts:
                    self.shipper.maker.openapi = layouts
                    log.info(
                        "routes read from the champion's OpenAPI document %s%s: %s",
                        base,
                        path,
                        ", ".join(sorted(layouts)),
                    )
                    return True
        if answered:
            log.info("no OpenAPI document at the champion: rows are inferred from the requests")
        return answered

    async def _learn_later(self) -> None:
        """The champion was not up at start-up (pods start together): try again a while."""
        for _ in range(60):
            await asyncio.sleep(5.0)
            try:
                if await self.learn_openapi():
                    return
            except Exception:  # learning is optional; serving goes on regardless
                log.debug("reading the champion's OpenAPI document failed", exc_info=True)

    def _status(self) -> dict[str, Any]:
        policy = self.proxy.policy
        return {
            "model": self.settings.model,
            "mode": policy.mode.value,
            "weight": policy.weight,
            "revision": policy.revision,
            "champion": policy.champion.version,
            "challenger": policy.challenger.version if policy.challenger else None,
            "spool_bytes": self.shipper.spool.size_bytes if self.shipper else 0,
            "layouts": {
                path: describe(layout)
                for path, layout in (self.shipper.maker.layouts() if self.shipper else {}).items()
            },
        }

    async def serve(self) -> None:
        """Run both ports until SIGTERM/SIGINT, then drain."""
        s = self.settings
        common: dict[str, Any] = {
            "host": s.host,
            "lifespan": "off",
            "access_log": False,
            "proxy_headers": False,  # a sidecar passes X-Forwarded-* on, it does not trust them
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
        if self.shipper is not None:
            self.shipper.start()
        if self.poller is not None:
            await self.poller.poll_once()
            self.poller.start()
        learning = None
        if not await self.learn_openapi():
            learning = loop.create_task(self._learn_later())
        self._log_start()
        try:
            await asyncio.gather(data.serve(), admin.serve())
        finally:
            if learning is not None:
                learning.cancel()
            if self.poller is not None:
                await self.poller.aclose()
            await self.proxy.aclose()
            await self.admin.aclose()
            if self.shipper is not None:
                await asyncio.to_thread(self.shipper.stop)

    def _log_start(self) -> None:
        s = self.settings
        policy = self.proxy.policy
        challenger = policy.challenger
        log.info(
            "driftloop sidecar for model %s: data port %s:%d, admin port %s:%d (/metrics "
            "/healthz /readyz); champion %s (%s)%s; mode %s",
            s.model,
            s.host,
            s.port,
            s.host,
            s.admin_port,
            policy.champion.url,
            policy.champion.version,
            f", challenger {challenger.url} ({challenger.version})" if challenger else "",
            policy.mode.value,
        )
        if self.shipper is None:
            log.info("capture off (--no-capture): predictions are routed, not recorded")
        else:
            log.info("records go to the monitor at %s", s.monitor_url)
            log.info("layouts: %s", self._layouts_line())


def run_sidecar(settings: SidecarSettings) -> None:
    """Run the sidecar in this process (uvloop when available) until it is told to stop."""
    # httpx logs every request at INFO: far too costly (and noisy) on the prediction path.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The shipper thread parses captured bodies; a short switch interval keeps the GIL from
    # holding the event loop for the default 5 ms whenever that thread is busy.
    sys.setswitchinterval(0.0005)
    sidecar = Sidecar(settings)
    try:
        import uvloop

        uvloop.run(sidecar.serve())
    except ImportError:  # pragma: no cover - uvloop is a dependency of uvicorn[standard]
        asyncio.run(sidecar.serve())
