"""Polls the monitor for the routing policy and the model schema; keeps the last one known.

``GET /v1/models/{name}/routing`` gives the policy (404: none, keep what we have) and
``GET /v1/models/{name}`` the schema (where rows live) and the URLs registered per version.
A failing monitor never changes the policy in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import httpx

from driftloop.contract import ModelSchema
from driftloop.errors import ConfigurationError
from driftloop.serving.capture import RecordShape
from driftloop.serving.metrics import ProxyMetrics
from driftloop.serving.routing import RoutingPolicy

__all__ = ["PolicyPoller"]

log = logging.getLogger(__name__)


class PolicyPoller:
    """Fetches policy and schema every ``interval`` seconds and hands them to callbacks."""

    def __init__(
        self,
        monitor_url: str,
        model: str,
        known: dict[str, str],
        on_policy: Callable[[RoutingPolicy], None],
        on_shape: Callable[[RecordShape], None],
        metrics: ProxyMetrics,
        *,
        token: str | None = None,
        interval: float = 5.0,
        timeout: float = 2.0,
    ) -> None:
        self.base = monitor_url.rstrip("/") + f"/v1/models/{model}"
        self.model = model
        self.known = dict(known)
        self.on_policy = on_policy
        self.on_shape = on_shape
        self.metrics = metrics
        self.interval = interval
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(timeout), trust_env=False
        )
        self.revision: int | None = None
        self.schema: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None

    async def poll_once(self) -> None:
        """Fetch the schema, then the policy; apply what changed."""
        await self._poll_model()
        await self._poll_policy()

    async def _poll_model(self) -> None:
        try:
            response = await self.client.get(self.base)
        except httpx.HTTPError as exc:
            log.debug("cannot read model %s from the monitor: %s", self.model, exc)
            return
        if response.status_code != 200:
            return
        try:
            data = response.json()
            for version in data.get("versions") or []:
                if version.get("url"):
                    self.known.setdefault(str(version["version"]), str(version["url"]))
            schema = data.get("schema")
            if schema and schema != self.schema:
                parsed = ModelSchema.model_validate(schema)
                self.on_shape(RecordShape.from_schema(parsed))
                self.schema = schema
        except (ValueError, TypeError, AttributeError) as exc:
            log.warning("ignoring the monitor's description of %s: %s", self.model, exc)

    async def _poll_policy(self) -> None:
        polls = self.metrics.policy_polls
        try:
            response = await self.client.get(self.base + "/routing")
        except httpx.HTTPError as exc:
            polls.labels(self.model, "error").inc()
            log.debug("cannot poll the routing policy: %s", exc)
            return
        if response.status_code == 404:
            polls.labels(self.model, "absent").inc()
            return
        if response.status_code != 200:
            polls.labels(self.model, "error").inc()
            return
        try:
            data = response.json()
            policy = RoutingPolicy.from_json(data, self.known)
        except (ValueError, ConfigurationError) as exc:
            polls.labels(self.model, "error").inc()
            log.warning("ignoring an invalid routing policy: %s", exc)
            return
        if policy.revision == self.revision:
            polls.labels(self.model, "unchanged").inc()
            return
        self.revision = policy.revision
        self.on_policy(policy)
        for upstream in (policy.champion, policy.challenger):
            if upstream is not None:
                self.known[upstream.version] = upstream.url
        polls.labels(self.model, "updated").inc()
        self.metrics.policy_revision.labels(self.model).set(policy.revision)
        log.info(
            "routing policy revision %d: %s, weight %.3f",
            policy.revision,
            policy.mode,
            policy.weight,
        )

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.poll_once()
            except Exception:  # polling must never stop serving
                log.exception("routing policy poll failed")

    def start(self) -> None:
        """Poll in the background, on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def aclose(self) -> None:
        """Stop polling and close the client."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.aclose()
