"""The Driftloop image: the Dockerfile's install steps, run in a fresh virtualenv, give a
``driftloop`` that starts the monitor and the sidecar as user 65532 without writing to its
installation (the chart runs the image with a read-only root filesystem).

There is no container engine on these machines, so the image itself is not built here: the test
copies what the Dockerfile's build stage copies, runs the same ``docker/install.sh`` and checks
the Dockerfile's user, entrypoint and steps. pip's cache is left on (the Dockerfile turns it off)
so repeated runs do not download everything again.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.procs import free_port, wait_http

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
UID = 65532


def build_stage() -> tuple[list[tuple[str, str]], list[str]]:
    """The build stage's COPY (source, destination) pairs and RUN commands."""
    text = DOCKERFILE.read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)
    build = stages[1]
    copies, runs = [], []
    for line in build.splitlines():
        if line.startswith("COPY "):
            *sources, dest = shlex.split(line)[1:]
            copies += [(s, dest) for s in sources]
        elif line.startswith("RUN "):
            runs.append(line[4:].strip())
    return copies, runs


def test_the_dockerfile_runs_as_65532_with_the_cli_as_entrypoint() -> None:
    text = DOCKERFILE.read_text()
    final = re.split(r"^FROM ", text, flags=re.M)[-1]
    assert "USER 65532:65532" in final
    assert 'ENTRYPOINT ["driftloop"]' in final
    assert "HOME=/tmp" in final, "the chart mounts an emptyDir on /tmp; nothing else is writable"
    assert "slim" in text
    _, runs = build_stage()
    assert runs == ["sh docker/install.sh /opt/driftloop"]


def _as_65532() -> list[str]:
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        return []  # not root: already an unprivileged user
    return [setpriv, f"--reuid={UID}", f"--regid={UID}", "--clear-groups"]


@pytest.fixture(scope="module")
def image_env() -> Iterator[Path]:
    """/opt/driftloop of the image, installed by the Dockerfile's steps into a temp folder that
    user 65532 can reach (pytest's own temp folders are private to root), with the system's
    python3 as the image has it (not a pyenv build under /root)."""
    work = Path(tempfile.mkdtemp(prefix="driftloop-image-"))
    work.chmod(0o755)
    src = work / "src"
    copies, runs = build_stage()
    for source, dest in copies:
        target = src / dest / Path(source).name if dest.endswith("/") else src / dest
        from_path = ROOT / source
        target.parent.mkdir(parents=True, exist_ok=True)
        if from_path.is_dir():
            shutil.copytree(from_path, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(from_path, target)
    prefix = work / "opt" / "driftloop"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    for command in runs:
        done = subprocess.run(
            command.replace("/opt/driftloop", str(prefix)),
            shell=True, cwd=src, env=env, capture_output=True, text=True, timeout=1500,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-4000:]
    yield prefix
    shutil.rmtree(work, ignore_errors=True)


def _snapshot(folder: Path) -> set[str]:
    return {str(p) for p in folder.rglob("*")}


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(1800)  # a fresh install of every dependency (pip's cache helps on reruns)
def test_the_image_install_starts_the_monitor_and_a_sidecar_without_writing_to_itself(
    image_env: Path,
) -> None:
    prefix = image_env
    run = prefix.parent.parent / "run"  # what the chart's /tmp emptyDir is
    run.mkdir()
    if os.geteuid() == 0:
        os.chown(run, UID, UID)
    before = _snapshot(prefix)
    env = {
        "PATH": f"{prefix / 'bin'}:/usr/bin:/bin",
        "HOME": str(run),
        "PYTHONDONTWRITEBYTECODE": "1",
        "BENTOML_DO_NOT_TRACK": "True",
    }
    driftloop = str(prefix / "bin" / "driftloop")
    database = f"sqlite:///{run / 'driftloop.db'}"
    upgraded = subprocess.run(
        [*_as_65532(), driftloop, "db", "upgrade", "--database-url", database],
        env=env, cwd=run, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert upgraded.returncode == 0, upgraded.stderr[-3000:]
    reports = subprocess.run(
        [*_as_65532(), str(prefix / "bin" / "python"), "-c", "import evidently"],
        env=env, cwd=run, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert reports.returncode == 0, "the monitor's Evidently report: " + reports.stderr[-2000:]
    monitor_port, data_port, admin_port = free_port(), free_port(), free_port()
    logs = [(run / name).open("wb") for name in ("monitor.log", "sidecar.log")]
    monitor = subprocess.Popen(
        [*_as_65532(), driftloop, "monitor", "--port", str(monitor_port), "--database-url",
         database],
        env=env, cwd=run, stdout=logs[0], stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    monitor_url = f"http://127.0.0.1:{monitor_port}"
    sidecar = subprocess.Popen(
        [*_as_65532(), driftloop, "sidecar", "--model", "echo", "--champion", monitor_url,
         "--monitor", monitor_url, "--port", str(data_port), "--admin-port", str(admin_port),
         "--spool-dir", str(run / "spool")],
        env=env, cwd=run, stdout=logs[1], stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        try:
            wait_http(f"{monitor_url}/readyz", 120, monitor)
            wait_http(f"http://127.0.0.1:{admin_port}/healthz", 120, sidecar)
        except RuntimeError as exc:
            for log in logs:
                log.flush()
            raise AssertionError(
                (run / "monitor.log").read_text()[-2000:]
                + (run / "sidecar.log").read_text()[-2000:]
            ) from exc
        # The sidecar proxies to its "champion" (here the monitor's health route).
        proxied = httpx.get(f"http://127.0.0.1:{data_port}/healthz", timeout=10)
        assert proxied.status_code == 200
        assert proxied.headers.get("x-request-id")
        assert httpx.get(f"{monitor_url}/", timeout=10).status_code == 200
    finally:
        for process in (sidecar, monitor):
            if process.poll() is None:
                os.killpg(process.pid, 15)
                process.wait(30)
        for log in logs:
            log.close()
    assert _snapshot(prefix) == before, "nothing is written into the installation at run time"
    with sqlite3.connect(run / "driftloop.db") as db:
        assert db.execute("select count(*) from alembic_version").fetchone()[0] >= 1
    if _as_65532():
        assert (run / "driftloop.db").stat().st_uid == UID, "the processes ran as 65532"
