"""Progress of long commands: a bar in a real terminal (a pseudo-terminal here), one plain line per
step when stderr is a pipe. ``dataset export`` once crashed in a terminal only (``TypeError:
unsupported format string passed to NoneType.__format__`` for a stage whose total was unknown)."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from driftloop.cli.progress import Progress

ROOT = Path(__file__).resolve().parents[3]


def in_a_terminal(args: list[str], cwd: Path, timeout: float = 120) -> tuple[int, str]:
    """Run ``python -m driftloop ARGS`` with stdout and stderr on a pseudo-terminal."""
    controller, terminal = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "driftloop", *args],
        stdin=terminal, stdout=terminal, stderr=terminal, cwd=cwd, env=env, close_fds=True,
    )  # fmt: skip
    os.close(terminal)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([controller], [], [], timeout)
            if not ready:
                raise AssertionError(f"no output for {timeout} s: {b''.join(chunks)[-2000:]!r}")
            try:
                data = os.read(controller, 65536)
            except OSError:  # EIO: the terminal closed with the process
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(controller)
        code = process.wait(timeout)
    return code, b"".join(chunks).decode(errors="replace")


def test_a_stage_without_a_total_draws_in_a_terminal_and_prints_plainly_elsewhere() -> None:
    screen = io.StringIO()
    with Progress(stream=screen, terminal=True) as bar:
        bar.update("joining labels to records", 0, None)
        bar.update("joining labels to records", 500, None)
        bar.update("joining labels to records", 1000, 1000)
        bar.update("writing", 2_500_000, 5_000_000, unit="bytes")
    assert "joining labels to records" in screen.getvalue()
    assert "1,000/1,000" in screen.getvalue()
    assert "2.5 MB/5.0 MB" in screen.getvalue()

    log = io.StringIO()
    with Progress(stream=log, terminal=False, interval=3600) as bar:
        bar.update("joining labels to records", 0, None)
        bar.update("joining labels to records", 500, None)  # within the interval: quiet
        bar.update("joining labels to records", 1000, 1000)
        bar.update("joining labels to records", 1000, 1000)  # already done: quiet
        with bar.step("writing the report"):
            pass
    lines = log.getvalue().splitlines()
    assert lines[0] == "joining labels to records: started"
    assert lines[1].startswith("joining labels to records: done, 1,000/1,000 in ")
    assert lines[2:] == ["writing the report: started", lines[3]]
    assert lines[3].startswith("writing the report: done in ")
    assert "\x1b" not in log.getvalue(), "no control characters in a log"


@pytest.fixture
def labeled_database(sqlite_database_url: str) -> str:
    from driftloop.server import create_app
    from driftloop.settings import JobSettings, Settings
    from tests.feedback.test_snapshots import setup_model

    app = create_app(Settings(database_url=sqlite_database_url, jobs=JobSettings(enabled=False)))
    with TestClient(app) as client:
        setup_model(client)
    app.state.driftloop.engine.dispose()
    return sqlite_database_url


def test_dataset_export_draws_its_bar_in_a_real_terminal(
    labeled_database: str, tmp_path: Path
) -> None:
    args = ["dataset", "export", "--model", "pets", "--database-url", labeled_database]
    code, screen = in_a_terminal([*args, "--out", str(tmp_path / "out")], tmp_path)
    assert code == 0, screen
    assert "Traceback" not in screen
    assert "joining labels to records" in screen
    assert "\x1b[" in screen, "rich drew a live bar"
    assert "snapshot " in screen
    assert "8 rows (5 production, 3 reference)" in screen


def test_dataset_export_prints_plain_progress_lines_into_a_pipe(
    labeled_database: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "driftloop", "dataset", "export", "--model", "pets",
         "--database-url", labeled_database, "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    for stage in ("joining labels to records", "building the table", "writing"):
        assert any(line.startswith(f"{stage}: done") for line in lines), lines
    assert "\x1b" not in done.stderr
    assert "8 rows" in done.stdout


def test_drift_shows_its_stages_in_a_terminal_then_the_table(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(size=2000)}).to_parquet(
        tmp_path / "r.parquet"
    )
    pd.DataFrame({"a": rng.normal(1, 1, size=2000), "b": rng.normal(size=2000)}).to_csv(
        tmp_path / "c.csv", index=False
    )
    code, screen = in_a_terminal(["drift", "r.parquet", "c.csv"], tmp_path)
    assert code == 0, screen
    assert "preparing the reference" in screen
    assert "comparing 2 features on 2,000 rows" in screen
    assert "Drift of c.csv against r.parquet" in screen
