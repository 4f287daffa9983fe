"""The routing policy poller against a real HTTP server that plays the monitor."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from driftloop.serving.capture import RecordShape
from driftloop.serving.metrics import ProxyMetrics
from driftloop.serving.policy import PolicyPoller
from driftloop.serving.routing import Mode, RoutingPolicy, Upstream
from tests.serving.procs import SidecarProcess
from tests.serving.servers import ServerThread, model_app


class FakeMonitor:
    """Serves whatever ``routing`` and ``model`` hold; ``status`` overrides the routing answer."""

    def __init__(self) -> None:
        self.routing: dict[str, Any] | None = None
        self.status = 200
        self.model: dict[str, Any] = {"name": "iris", "schema": None, "versions": []}
        self.auth: list[str | None] = []

    def app(self) -> Starlette:
        async def routing(request: Request) -> Response:
            self.auth.append(request.headers.get("authorization"))
            if self.status != 200:
                return JSONResponse({"detail": "nope"}, status_code=self.status)
            if self.routing is None:
                return JSONResponse({"detail": "no policy"}, status_code=404)
            return JSONResponse(self.routing)

        async def model(request: Request) -> Response:
            return JSONResponse(self.model)

        return Starlette(
            routes=[
                Route("/v1/models/iris/routing", routing),
                Route("/v1/models/iris", model),
            ]
        )


@pytest.fixture
def monitor() -> Iterator[tuple[FakeMonitor, str]]:
    fake = FakeMonitor()
    with ServerThread(fake.app()) as server:
        yield fake, server.url


def policy_json(revision: int, weight: float = 0.3, url: str | None = None) -> dict[str, Any]:
    return {
        "model": "iris",
        "mode": "canary",
        "weight": weight,
        "sticky_key": None,
        "champion": {"version": "v1", "url": None},
        "challenger": {"version": "v2", "url": url},
        "revision": revision,
        "updated_at": "2026-01-01T00:00:00Z",
    }


def run_polls(
    url: str, steps: list[Any]
) -> tuple[list[RoutingPolicy], list[RecordShape], CollectorRegistry]:
    """Poll once after each step (a callable changing the fake monitor)."""
    policies: list[RoutingPolicy] = []
    shapes: list[RecordShape] = []
    registry = CollectorRegistry()

    async def main() -> None:
        poller = PolicyPoller(
            url,
            "iris",
            {"v1": "http://127.0.0.1:1", "v2": "http://127.0.0.1:2"},
            policies.append,
            shapes.append,
            ProxyMetrics(registry),
            token="s3cret",
        )
        try:
            for step in steps:
                step()
                await poller.poll_once()
        finally:
            await poller.aclose()

    asyncio.run(main())
    return policies, shapes, registry


def test_a_new_revision_is_applied_and_an_unchanged_one_ignored(
    monitor: tuple[FakeMonitor, str],
) -> None:
    fake, url = monitor

    def publish(revision: int, weight: float) -> Any:
        return lambda: setattr(fake, "routing", policy_json(revision, weight))

    policies, _, registry = run_polls(url, [publish(1, 0.3), publish(1, 0.3), publish(2, 0.5)])
    one, two = Upstream("v1", "http://127.0.0.1:1"), Upstream("v2", "http://127.0.0.1:2")
    assert policies == [
        RoutingPolicy(Mode.canary, one, two, weight=0.3, revision=1),
        RoutingPolicy(Mode.canary, one, two, weight=0.5, revision=2),
    ]
    assert registry.get_sample_value("driftloop_sidecar_policy_revision", {"model": "iris"}) == 2
    assert set(fake.auth) == {"Bearer s3cret"}


@pytest.mark.parametrize("status", [404, 500, 503], ids=["absent", "error", "unavailable"])
def test_the_last_policy_is_kept_when_the_monitor_has_none_or_fails(
    monitor: tuple[FakeMonitor, str], status: int
) -> None:
    fake, url = monitor

    def fail() -> None:
        if status == 404:
            fake.routing = None
        else:
            fake.status = status

    policies, _, registry = run_polls(
        url, [lambda: setattr(fake, "routing", policy_json(3)), fail, fail]
    )
    assert [p.revision for p in policies] == [3]
    result = "absent" if status == 404 else "error"
    assert (
        registry.get_sample_value(
            "driftloop_sidecar_policy_polls_total", {"model": "iris", "result": result}
        )
        == 2
    )


def test_an_unreachable_monitor_changes_nothing() -> None:
    from tests.procs import free_port

    policies, shapes, registry = run_polls(f"http://127.0.0.1:{free_port()}", [lambda: None])
    assert (policies, shapes) == ([], [])
    assert (
        registry.get_sample_value(
            "driftloop_sidecar_policy_polls_total", {"model": "iris", "result": "error"}
        )
        == 1
    )


def test_an_invalid_policy_is_ignored(monitor: tuple[FakeMonitor, str]) -> None:
    fake, url = monitor
    policies, _, _ = run_polls(url, [lambda: setattr(fake, "routing", {"mode": "teleport"})])
    assert policies == []


def test_the_schema_layout_and_registered_urls_are_picked_up(
    monitor: tuple[FakeMonitor, str],
) -> None:
    fake, url = monitor

    def register() -> None:
        fake.model = {
            "name": "iris",
            "schema": {"layout": {"input_path": "input_series", "columns": ["a", "b"]}},
            "versions": [{"version": "v7", "role": "challenger", "url": "http://127.0.0.1:7"}],
        }
        fake.routing = policy_json(5) | {"challenger": {"version": "v7", "url": None}}

    policies, shapes, _ = run_polls(url, [register])
    assert shapes[0].layout.input_path == "input_series"
    assert shapes[0].layout.columns == ["a", "b"]
    assert policies[0].challenger == Upstream("v7", "http://127.0.0.1:7")


@pytest.mark.integration
def test_a_running_sidecar_follows_the_policy_the_monitor_publishes(
    monitor: tuple[FakeMonitor, str], tmp_path: Path
) -> None:
    fake, url = monitor
    body = {"inputs": [{"a": 1.0}]}
    with ServerThread(model_app("champ")) as champion, ServerThread(model_app("chall")) as chall:
        args = ["--model", "iris", "--champion", champion.url, "--champion-version", "v1",
                "--monitor", url]  # fmt: skip
        with SidecarProcess("sidecar-policy", args, tmp_path) as sidecar, httpx.Client() as client:

            def answers(n: int = 5) -> set[tuple[str, str]]:
                out = set()
                for _ in range(n):
                    response = client.post(f"{sidecar.url}/predict", json=body)
                    out.add(
                        (response.headers["x-driftloop-variant"], response.json()[0]["prediction"])
                    )
                return out

            def eventually(expected: set[tuple[str, str]]) -> None:
                deadline = time.monotonic() + 10
                while (got := answers()) != expected:
                    assert time.monotonic() < deadline, got
                    time.sleep(0.2)

            assert answers() == {("champion", "champ")}  # no policy yet (404): the flags rule
            fake.routing = policy_json(1, weight=1.0, url=chall.url)
            eventually({("challenger", "chall")})
            fake.routing = None  # the policy disappears: the last one known stays
            time.sleep(1.5)
            assert answers() == {("challenger", "chall")}
            fake.routing = policy_json(2, weight=0.0, url=chall.url)
            eventually({("champion", "champ")})
            assert sidecar.metric("driftloop_sidecar_policy_revision") == 2
