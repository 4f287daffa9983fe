"""The public surface of ``driftloop.serving`` and what importing it drags in."""

from __future__ import annotations

import subprocess
import sys

import driftloop.serving

HEAVY = ("scipy", "pandas", "sqlalchemy", "evidently", "prometheus_client", "bentoml")


def test_the_public_names_are_pinned() -> None:
    assert sorted(driftloop.serving.__all__) == [
        "Captured",
        "Decision",
        "DiskSpool",
        "DriftloopMiddleware",
        "HttpSink",
        "MemorySpool",
        "Mode",
        "Outcome",
        "PolicyPoller",
        "ProxyApp",
        "RecordShape",
        "RoutingPolicy",
        "Shipper",
        "Sidecar",
        "Sink",
        "Spool",
        "Upstream",
        "choose",
        "extract_records",
        "make_shipper",
        "run_sidecar",
    ]
    for name in driftloop.serving.__all__:
        assert getattr(driftloop.serving, name) is not None


def test_importing_serving_loads_nothing_heavy() -> None:
    code = (
        "import sys, driftloop.serving, driftloop.serving.bento; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""
