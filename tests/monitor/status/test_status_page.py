"""The status page at ``/``, loaded by headless Chromium from a running monitor."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.monitor.api.test_records import batch, make_record
from tests.procs import MonitorProcess, need_binary

OUTPUT = Path(__file__).resolve().parents[3] / "test-output"


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
                "--window-size=1366,900",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=True,
        )


@pytest.mark.integration
def test_the_status_page_shows_models_versions_and_records_in_a_browser(
    sqlite_database_url: str, tmp_path: Path
) -> None:
    with MonitorProcess(sqlite_database_url, tmp_path) as monitor:
        records = [make_record(i) for i in range(40)]
        records += [make_record(i, variant="challenger", version="v2") for i in range(40, 50)]
        httpx.post(f"{monitor.url}/v1/records", json=batch(records)).raise_for_status()
        dom = chromium("--dump-dom", f"{monitor.url}/").stdout
        OUTPUT.mkdir(exist_ok=True)
        shot = OUTPUT / "status-page.png"
        chromium(f"--screenshot={shot}", f"{monitor.url}/")
    assert "Driftloop monitor" in dom
    assert 'id="model-iris"' in dom
    assert "v1: champion" in dom
    assert "v2: challenger" in dom
    assert "<td>40</td>" in dom, "records per version and variant"
    assert "<td>10</td>" in dom, "records per version and variant"
    assert "/v1/models/iris/report" in dom
    assert "http://" not in dom.replace(monitor.url, ""), "no external assets"
    assert shot.stat().st_size > 10_000
