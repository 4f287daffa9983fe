"""The admin port: /metrics, /healthz, /readyz (the champion answers)."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry, Counter

from driftloop.serving.admin import AdminApp
from tests.procs import free_port
from tests.serving.servers import ServerThread, model_app


def test_metrics_health_and_readiness_follow_the_champion() -> None:
    registry = CollectorRegistry()
    Counter("driftloop_example_total", "An example.", registry=registry).inc(3)
    champion = {"url": f"http://127.0.0.1:{free_port()}"}
    admin = AdminApp(registry, lambda: champion["url"], lambda: {"model": "iris"})
    with ServerThread(admin) as server, ServerThread(model_app("champ")) as upstream:
        metrics = httpx.get(f"{server.url}/metrics")
        assert "driftloop_example_total 3.0" in metrics.text
        assert metrics.headers["content-type"].startswith("text/plain")
        assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok", "model": "iris"}
        down = httpx.get(f"{server.url}/readyz")
        assert down.status_code == 503
        assert "ConnectError" in down.json()["champion"]
        champion["url"] = upstream.url  # a Bento without /readyz answers 404: it is up
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        assert httpx.get(f"{server.url}/nope").status_code == 404
