"""One exit-code table for every command (0 ok, 1 finding, 2 bad input, 3 unreachable), checked
command by command, and the table in docs/cli.md says the same.

Services that refuse or fail (4xx / 5xx) are played by a stdlib HTTP server on loopback that
answers a fixed status: a stand-in, because only the status code matters to the exit code.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from driftloop.cli import app
from driftloop.cli.exits import EXIT_CODES
from tests.procs import free_port

ROOT = Path(__file__).resolve().parents[3]
runner = CliRunner()
CLOSED = f"http://127.0.0.1:{free_port()}"  # nobody listens there
DEAD_PG = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2"


class _Answer(BaseHTTPRequestHandler):
    status = 200

    def _reply(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        body = json.dumps({"detail": f"answered {self.status}"}).encode()
        self.send_response(self.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _reply

    def log_message(self, *_args: object) -> None:
        return


@pytest.fixture
def answering() -> Iterator[Callable[[int], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(status: int) -> str:
        handler = type("Handler", (_Answer,), {"status": status})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=300), "target": rng.integers(0, 2, 300)}).to_csv(
        tmp_path / "ref.csv", index=False
    )
    pd.DataFrame({"a": rng.normal(3, 1, size=300), "target": rng.integers(0, 2, 300)}).to_csv(
        tmp_path / "cur.csv", index=False
    )
    pd.DataFrame({"zzz": [1, 2, 3]}).to_csv(tmp_path / "other.csv", index=False)
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    joblib.dump(model, tmp_path / "model.joblib")
    return tmp_path


def code(*args: str) -> int:
    return runner.invoke(app, list(args)).exit_code


def test_drift_exits_0_1_2(data: Path) -> None:
    ref, cur = str(data / "ref.csv"), str(data / "cur.csv")
    assert code("drift", ref, cur, "--json") == 0
    assert code("drift", ref, cur, "--json", "--fail-on-drift") == 1
    assert code("drift", ref, str(data / "other.csv"), "--fail-on-drift") == 2


def test_compare_exits_2_on_bad_input_and_3_when_a_bento_is_unreachable(
    data: Path, answering: Callable[[int], str]
) -> None:
    holdout = str(data / "ref.csv")
    args = ["compare", "--data", holdout, "--label-column"]
    assert code(*args, "nope", "--champion", CLOSED, "--challenger", CLOSED) == 2
    assert code(*args, "target", "--champion", CLOSED, "--challenger", CLOSED) == 3
    failing = answering(503)
    assert code(*args, "target", "--champion", failing, "--challenger", failing) == 3
    refusing = answering(422)
    assert code(*args, "target", "--champion", refusing, "--challenger", refusing) == 2


def test_dataset_export_exits_2_on_an_unknown_model_and_3_on_an_unreachable_database(
    sqlite_database_url: str, tmp_path: Path
) -> None:
    args = ["dataset", "export", "--model", "nope", "--out", str(tmp_path)]
    result = runner.invoke(app, [*args, "--database-url", sqlite_database_url])
    assert result.exit_code == 2
    assert "unknown model 'nope'" in result.output
    assert code(*args, "--database-url", DEAD_PG) == 3


def test_db_upgrade_exits_3_when_the_database_is_unreachable() -> None:
    result = runner.invoke(app, ["db", "upgrade", "--database-url", DEAD_PG])
    assert result.exit_code == 3
    assert "cannot reach the database" in result.output
    assert "nobody@127.0.0.1" in result.output


@pytest.mark.parametrize(
    ("command", "extra"),
    [
        (["retrain", "iris"], []),
        (["webhooks", "list"], []),
        (["webhooks", "status", "msg_1"], []),
        (["webhooks", "replay", "msg_1"], []),
    ],
    ids=["retrain", "webhooks-list", "webhooks-status", "webhooks-replay"],
)
def test_monitor_clients_exit_2_on_4xx_and_3_on_5xx_or_no_answer(
    command: list[str], extra: list[str], answering: Callable[[int], str]
) -> None:
    assert code(*command, "--url", answering(404), *extra) == 2
    assert code(*command, "--url", answering(503), *extra) == 3
    assert code(*command, "--url", CLOSED, *extra) == 3


def test_webhooks_replay_with_nothing_to_replay_is_bad_input() -> None:
    assert code("webhooks", "replay", "--url", CLOSED) == 2


def test_dashboards_build_check_is_a_finding_and_publish_maps_grafana_answers(
    tmp_path: Path, answering: Callable[[int], str]
) -> None:
    assert code("dashboards", "build", "--check", "--out", str(tmp_path), "--chart-files",
                str(tmp_path / "chart")) == 1  # fmt: skip
    publish = ["dashboards", "publish", "--token", "t", "--timeout", "5", "--url"]
    assert code(*publish, answering(401)) == 2
    assert code(*publish, answering(500)) == 3
    assert code(*publish, CLOSED) == 3
    assert code(*publish, "ftp://grafana") == 2


def test_bento_build_exits_2_on_bad_input(data: Path) -> None:
    args = ["bento", "build", "--reference", str(data / "ref.csv"), "--no-smoke"]
    assert code(*args, "--model", str(data / "missing.joblib"), "--name", "ok") == 2
    assert code(*args, "--model", str(data / "model.joblib"), "--name", "Bad Name") == 2


def test_usage_errors_exit_2() -> None:
    assert code("drift") == 2
    assert code("dataset", "export", "--no-such-flag") == 2


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["monitor", "--host", "0.0.0.0", "--port", "1"], {}),
        (["monitor", "--port", "1"], {"DRIFTLOOP_TOKENS": "not json"}),
        (["sidecar", "--model", "m", "--champion", CLOSED, "--monitor", CLOSED, "--weight", "7"],
         {}),
    ],
    ids=["monitor-open-api", "monitor-bad-env", "sidecar-bad-weight"],
)  # fmt: skip
def test_bad_settings_of_long_running_commands_exit_2_with_one_line(
    args: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "driftloop", *args],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr


def test_the_documented_table_is_the_one_the_code_uses() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    for number, meaning in EXIT_CODES.items():
        assert f"| {number} | {meaning} |" in text
