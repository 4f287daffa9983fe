"""The sidecar says at start-up where it listens, where records go and how it finds rows; it
refuses to start without a monitor unless told ``--no-capture``."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from driftloop.errors import ConfigurationError
from driftloop.serving.sidecar import Sidecar
from driftloop.settings import SidecarSettings


def test_the_cli_refuses_to_start_without_a_monitor_naming_the_way_out() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "driftloop", "sidecar", "--model", "m",
         "--champion", "http://127.0.0.1:9"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--monitor" in done.stderr
    assert "--no-capture" in done.stderr


def test_without_a_monitor_the_sidecar_needs_no_capture_and_then_records_nothing() -> None:
    with pytest.raises(ConfigurationError, match="--no-capture"):
        Sidecar(SidecarSettings(model="m", champion_url="http://127.0.0.1:9"))
    sidecar = Sidecar(
        SidecarSettings(model="m", champion_url="http://127.0.0.1:9", no_capture=True)
    )
    assert sidecar.shipper is None
    assert sidecar.proxy.core.wants("POST") is False


def test_start_up_logs_ports_monitor_and_layouts_at_info(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    settings = SidecarSettings(
        model="m", champion_url="http://127.0.0.1:9", monitor_url="http://127.0.0.1:7",
        port=18000, admin_port=18001,
    )  # fmt: skip
    settings.capture.spool_dir = str(tmp_path)
    sidecar = Sidecar(settings)
    try:
        with caplog.at_level(logging.INFO, logger="driftloop.serving.sidecar"):
            sidecar._log_start()
    finally:
        assert sidecar.shipper is not None
        sidecar.shipper.stop(0.1)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "data port 127.0.0.1:18000" in text
    assert "admin port 127.0.0.1:18001" in text
    assert "records go to the monitor at http://127.0.0.1:7" in text
    assert "rows are inferred per route" in text
