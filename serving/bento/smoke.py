"""Serve a freshly built Bento on a free loopback port and check it answers like the model."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import httpx

__all__ = ["free_port", "smoke_test", "wait_ready"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for ``url`` to answer 2xx; raise with the process's fate otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bentoml serve exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2.0).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready within {timeout:.0f} s")


def _expected(model: Any, rows: list[dict[str, Any]], frame_input: bool) -> list[Any]:
    import numpy as np

    if frame_input:
        import pandas as pd

        x: Any = pd.DataFrame(rows)
    else:
        table = [list(row.values()) for row in rows]
        text = any(isinstance(v, str | bool) for row in table for v in row)
        x = np.asarray(table, dtype=object if text else float)
    predicted: list[Any] = np.asarray(model.predict(x)).tolist()
    return predicted


def smoke_test(
    bento_tag: str,
    model: Any,
    rows: list[dict[str, Any]],
    frame_input: bool,
    timeout: float,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Start ``bentoml serve <tag>``, POST ``rows``, compare with ``model.predict``, stop it."""
    step = progress or (lambda _stage, _done, _total: None)
    port = free_port()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bentoml",
                "serve",
                bento_tag,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "BENTOML_DO_NOT_TRACK": "True"},
            start_new_session=True,
        )
        started = time.perf_counter()
        try:
            base = f"http://127.0.0.1:{port}"
            try:
                step("smoke test: starting bentoml serve", 0, 1)
                wait_ready(f"{base}/readyz", process, timeout)
                step("smoke test: starting bentoml serve", 1, 1)
                step("smoke test: comparing answers with the model", 0, len(rows))
                response = httpx.post(f"{base}/predict", json={"inputs": rows}, timeout=30.0)
            except (RuntimeError, httpx.HTTPError) as exc:
                log.seek(0)
                tail = log.read()[-3000:].decode(errors="replace")
                raise RuntimeError(f"smoke test of {bento_tag} failed: {exc}\n{tail}") from exc
            ready = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(
                    f"smoke test of {bento_tag}: HTTP {response.status_code}: {response.text[:500]}"
                )
            answers = response.json()
            got = [a.get("prediction") for a in answers] if isinstance(answers, list) else None
            want = _expected(model, rows, frame_input)
            if got != want:
                raise RuntimeError(
                    f"smoke test of {bento_tag}: the Bento answered {got!r} where the model "
                    f"predicts {want!r}"
                )
            step("smoke test: comparing answers with the model", len(rows), len(rows))
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
    return {"rows": len(rows), "ready_seconds": round(ready, 2), "port": port}
