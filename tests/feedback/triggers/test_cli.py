"""``driftloop retrain`` and ``driftloop webhooks`` against the monitor served on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from typer.testing import CliRunner

from driftloop.cli import app as cli
from driftloop.server import create_app
from driftloop.settings import Scope, Settings
from tests.feedback.webhooks.servers import Served

pytestmark = pytest.mark.integration

TOKEN = "admin-token"


@pytest.fixture
def monitor_url(webhook_settings: Settings) -> Iterator[str]:
    settings = webhook_settings.model_copy(update={"tokens": {TOKEN: [Scope.admin]}})
    app = create_app(settings)
    with Served(app) as served:
        served_url = served.base
        response = httpx.post(
            f"{served_url}/v1/models",
            json={"name": "iris"},
            headers={"authorization": f"Bearer {TOKEN}"},
        )
        assert response.status_code == 201
        yield served_url
    app.state.driftloop.engine.dispose()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_retrain_then_list_status_and_replay(monitor_url: str) -> None:
    common = ["--url", monitor_url, "--token", TOKEN]
    code, out = run("retrain", "iris", "--note", "from the CLI", *common)
    assert code == 0, out
    assert "trigger 1 fired for iris: webhook msg_" in out
    webhook_id = out.split("webhook ", 1)[1].split(" ", 1)[0]

    code, out = run("retrain", "iris", *common)
    assert code == 2  # refused (4xx): docs/cli.md's exit codes
    assert "HTTP 409" in out
    assert "cooldown until" in out

    code, out = run("webhooks", "list", "--status", "pending", *common)
    assert code == 0
    assert webhook_id in out

    code, out = run("webhooks", "status", webhook_id, *common)
    assert code == 0
    assert '"status": "pending"' in out
    assert '"note": "from the CLI"' in out

    code, out = run("webhooks", "replay", webhook_id, *common)
    assert code == 0
    assert f"{webhook_id} queued for delivery" in out

    code, out = run("webhooks", "replay", "--failed", *common)
    assert code == 2
    assert "nothing to replay" in out


def test_the_cli_reports_auth_and_connection_errors(monitor_url: str) -> None:
    code, out = run("retrain", "iris", "--url", monitor_url)
    assert code == 2
    assert "HTTP 401" in out
    code, out = run("retrain", "nope", "--url", monitor_url, "--token", TOKEN)
    assert code == 2
    assert "unknown model 'nope'" in out
    code, out = run("webhooks", "list", "--url", "http://127.0.0.1:9", "--token", TOKEN)
    assert code == 3
    assert "cannot reach the monitor" in out
