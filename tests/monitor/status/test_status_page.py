"""The status pages, loaded by headless Chromium from a running monitor, with screenshots under
``test-output/``: the paginated overview, a model page whose every chart has data (traffic and
errors, drift heatmap, performance band, label coverage, the rollout's confidence sequence), and
the reference-vs-current histogram a click on a feature shows."""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.monitor.api.test_records import batch, make_record
from tests.procs import MonitorProcess, need_binary

OUTPUT = Path(__file__).resolve().parents[3] / "test-output"
CHARTS = ("traffic", "errors", "drift", "performance", "coverage", "rollout")


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    binary = need_binary("chromium")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--window-size=1366,1400",
                "--virtual-time-budget=5000",  # let the page's own fetches finish
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )


def screenshot(url: str, name: str) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    shot = OUTPUT / name
    chromium(f"--screenshot={shot}", url)
    assert shot.stat().st_size > 10_000, f"{name} looks blank"
    return shot


def chart_points(dom: str) -> dict[str, int]:
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(r'data-chart="([a-z]+)" data-points="(\d+)"', dom)
    }


def external(dom: str, own: str) -> list[str]:
    return [u for u in re.findall(r'(?:src|href)="(https?://[^"]+)"', dom) if not u.startswith(own)]


@pytest.mark.integration
def test_the_overview_is_paginated_with_a_summary_first(
    sqlite_database_url: str, tmp_path: Path
) -> None:
    with MonitorProcess(sqlite_database_url, tmp_path) as monitor:
        records = [make_record(i, model=f"model-{i:03d}") for i in range(60)]
        records += [make_record(i, variant="challenger", version="v2") for i in range(100, 110)]
        httpx.post(f"{monitor.url}/v1/records", json=batch(records)).raise_for_status()
        registered = {
            "name": "secretive",
            "versions": [
                {"version": "v1", "url": "https://bob:hunter2@bento.example:3000/?token=abc123"}
            ],
        }
        httpx.post(f"{monitor.url}/v1/models", json=registered).raise_for_status()
        first = chromium("--dump-dom", f"{monitor.url}/").stdout
        second = chromium("--dump-dom", f"{monitor.url}/?page=2").stdout
        filtered = httpx.get(f"{monitor.url}/", params={"q": "model-05"}).text
        secret_page = httpx.get(f"{monitor.url}/models/secretive").text
        screenshot(f"{monitor.url}/", "status-overview.png")
    assert ">62<" in first, "the summary comes first: the number of models"
    assert "page 1 of 2" in first
    assert first.count('href="/models/') == 50
    assert 'href="/models/model-000"' in first
    assert "page 2 of 2" in second
    assert 'href="/models/secretive"' in second
    assert filtered.count('href="/models/') == 10
    assert '<meta http-equiv="refresh"' not in first, "no full-page reload"
    assert external(first, monitor.url) == [], "no external assets"
    assert "hunter2" not in secret_page
    assert "abc123" not in secret_page


def shadow_pairs(url: str, n: int = 120) -> None:
    """The rollout starts in shadow: both versions answer the same requests, then labels come.
    The challenger is right more often, so the confidence sequence moves above the margin."""
    import random
    import uuid
    from datetime import UTC, datetime

    from tests.dashboards.stack import MODEL, _label, _row

    rng = random.Random(3)
    records, labels = [], []
    for _ in range(n):
        row, rid = _row(rng, 0.0), uuid.uuid4().hex
        truth = _label(row)
        at = datetime.now(UTC).isoformat()
        for version, variant, right in (("v1", "champion", 0.7), ("v2", "shadow", 0.95)):
            guess = truth if rng.random() < right else "setosa"
            records.append(
                {"request_id": rid, "model": MODEL, "version": version, "variant": variant,
                 "timestamp": at, "inputs": row, "outputs": {"prediction": guess},
                 "latency_ms": 2.0, "status": 200}
            )  # fmt: skip
        labels.append({"request_id": rid, "label": truth})
    httpx.post(f"{url}/v1/records", json=batch(records), timeout=30).raise_for_status()
    httpx.post(f"{url}/v1/feedback", json=labels, timeout=30).raise_for_status()


ACCURACY = r"<tr><td>accuracy</td><td>0\.\d+ \[0\.\d+, [01]\.?\d*\]</td>"
"""The estimated accuracy's row: the value and its interval."""


def estimated_part(html: str) -> str:
    """The "Estimated vs realized performance" section of a model page ("" when absent)."""
    parts = html.split("Estimated vs realized performance</h3>", 1)
    return parts[1].split("<h3>", 1)[0] if len(parts) == 2 else ""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from tests.dashboards.stack import running_stack

    with running_stack(tmp_path_factory.mktemp("status"), with_sidecar=False) as running:
        yield running


@pytest.mark.integration
@pytest.mark.slow
def test_the_model_page_draws_every_chart_with_data_and_updates_in_place(stack: object) -> None:
    from tests.dashboards.stack import MODEL

    url = stack.monitor.url  # type: ignore[attr-defined]
    page = f"{url}/models/{MODEL}"
    shadow_pairs(url)
    # The periodic jobs (every second here) evaluate drift and the rollout: wait for both.
    # The estimate (from the records' class scores, recomputed every 2 s) too.
    deadline = time.monotonic() + 120
    points: dict[str, int] = {}
    while time.monotonic() < deadline:
        html = httpx.get(page, timeout=30).text
        points = chart_points(html)
        if all(points.get(c, 0) > 0 for c in CHARTS) and re.search(ACCURACY, estimated_part(html)):
            break
        time.sleep(1)
    assert all(points.get(c, 0) > 0 for c in CHARTS), points
    dom = chromium("--dump-dom", page).stdout
    assert all(chart_points(dom).get(c, 0) > 0 for c in CHARTS), chart_points(dom)
    assert external(dom, url) == [], "no external assets"
    assert '<meta http-equiv="refresh"' not in dom
    headings = re.findall(r"<th>([^<]*)</th>", dom)
    assert headings
    assert not [h for h in headings if "_" in h], "readable headers, not snake_case"
    assert "<details>" in dom, "evidence is folded"
    # The stack's records carry class scores: estimated accuracy with its interval, per group.
    estimated = estimated_part(dom)
    # Once (a whole suite in one process, before the wait above included it) this section said
    # "no records in the last 1h" with the stack's traffic flowing: what the API says goes in
    # the message.
    section = httpx.get(f"{url}/v1/models/{MODEL}", timeout=30).json()["performance"]
    summary = {k: v for k, v in section["estimated"].items() if k != "groups"}
    assert re.search(ACCURACY, estimated), (estimated[:300], summary)
    fragment = httpx.get(page, params={"fragment": "1"}, timeout=30).text
    assert 'id="data"' in fragment, "the refresh button fetches the data part"
    screenshot(page, "status-model.png")

    feature = "petal_length"
    assert f'data-feature="{feature}"' in dom, "feature names in the heatmap are links"
    clicked = chromium("--dump-dom", f"{page}#feature={feature}").stdout
    assert f'<div class="histogram" data-feature="{feature}">' in clicked
    histogram = chart_points(clicked).get("histogram", 0)
    assert histogram > 0, "reference and current bars"
    screenshot(f"{page}#feature={feature}", "status-model-histogram.png")
