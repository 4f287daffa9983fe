"""``driftloop mlflow setup`` refusals (its success is tested against the real MLflow server in
``test_mlflow_e2e.py``)."""

from __future__ import annotations

from typer.testing import CliRunner

from driftloop.cli import app
from tests.procs import free_port


def test_setup_says_when_mlflow_cannot_be_reached() -> None:
    tracking = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = CliRunner().invoke(
        app, ["mlflow", "setup", "--tracking-uri", tracking, "--monitor-url", "http://m:8080"]
    )
    assert result.exit_code == 2
    assert f"MLflow at {tracking} is unreachable" in result.output


def test_setup_refuses_an_event_driftloop_does_not_handle() -> None:
    result = CliRunner().invoke(
        app,
        ["mlflow", "setup", "--tracking-uri", "http://mlflow:5000", "--monitor-url",
         "http://m:8080", "--event", "registered_model.created"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "unknown event 'registered_model.created'" in result.output
