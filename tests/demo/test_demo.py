"""``driftloop demo`` end to end: every step's outcome, read back from the monitor's API."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import fsspec
import httpx
import pytest

from tests.procs import MonitorProcess

HOG_SECONDS = 540
"""A CPU hog stops by itself after this long, even if the test process dies."""


@pytest.fixture
def busy_machine() -> Iterator[None]:
    """Two CPU-bound processes beside the demo (the machine of a user running other work, or a
    CI runner shared with other jobs); bounded in time and killed when the test ends."""
    loop = (
        f"import time\nend = time.monotonic() + {HOG_SECONDS}\n"
        "while time.monotonic() < end:\n    pass"
    )
    hogs = [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(2)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait(timeout=30)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(840)
def test_the_demo_promotes_the_better_model_on_a_busy_machine(
    tmp_path: Path, busy_machine: None
) -> None:
    workdir = tmp_path / "demo"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "driftloop",
            "demo",
            "--workdir",
            str(workdir),
            "--requests",
            "900",
            "--rate",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=720,  # two CPU hogs beside it: about 8 min on a loaded 2-core machine
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "challenger promoted" in result.stdout
    # Nothing the demo started outlives it: BentoML workers live in sessions of their own.
    assert started_under(workdir) == [], "processes the demo left running"
    # Output is a pipe here, not a terminal: progress came line by line, step by step.
    lines = result.stdout.splitlines()
    assert any(line.startswith("[1] Train the champion") for line in lines)
    assert lines.index(next(x for x in lines if x.startswith("[1] "))) < lines.index(
        next(x for x in lines if x.startswith("[9] "))
    )

    # The demo stopped its processes; a monitor on its database tells what they left behind.
    with (
        MonitorProcess(f"sqlite:///{workdir / 'driftloop.db'}", tmp_path) as monitor,
        httpx.Client(base_url=monitor.url, timeout=30) as api,
    ):
        check_outcomes(api)


def started_under(workdir: Path) -> list[str]:
    """Command lines of live processes whose environment points into ``workdir`` (the demo
    gives every Bento it serves ``BENTOML_HOME`` there)."""
    marker = f"BENTOML_HOME={workdir}".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            if any(variable.startswith(marker) for variable in environ):
                stat = (entry / "stat").read_text()
                if stat[stat.rindex(")") + 2] != "Z":  # a zombie holds nothing
                    found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


def check_outcomes(api: httpx.Client) -> None:
    """Each step's outcome, as the monitor's API tells it."""
    model = api.get("/v1/models/iris").json()
    by_version = model["records_by_version"]
    assert by_version["v1"]["champion"] > 500, "traffic flowed through the sidecar"
    assert {"shadow", "challenger"} <= set(by_version["v2"]), "the rollout split traffic"

    drift = [d for d in model["drift"] if d["version"] == "v1" and d["variant"] == "champion"]
    features = {f["name"]: f["drifted"] for f in drift[0]["reference"]["features"]}
    assert features["petal_length"], "the injected drift"
    assert features["petal_width"], "the injected drift"
    assert not features["sepal_width"], "a feature nobody touched stays quiet"

    triggers = api.get("/v1/models/iris/triggers").json()
    assert triggers[-1]["reason"] == "drift"
    assert triggers[-1]["delivery"] == "delivered"
    filesystem, path = fsspec.core.url_to_fs(triggers[-1]["dataset"]["uri"])
    assert filesystem.exists(path), "the dataset snapshot was written"

    rollout = api.get("/v1/models/iris/rollout").json()
    assert rollout["rollout"]["status"] == "promoted"
    evidence = rollout["decisions"][-1]["evidence"]
    assert evidence["difference"]["running_lower"] > -evidence["margin"], "non-inferiority shown"
    versions = {v["version"]: v["role"] for v in model["versions"]}
    assert versions == {"v1": "retired", "v2": "champion"}
    assert api.get("/v1/models/iris/routing").json()["champion"]["version"] == "v2"

    performance = model["performance"]["windows"]
    first = next(iter(performance.values()))["versions"]
    assert first["v1"]["champion"]["metrics"]["accuracy"]["n"] > 500, "labels were joined"
