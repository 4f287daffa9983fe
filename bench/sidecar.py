"""Sidecar overhead: the same Bento called directly, through ``driftloop sidecar``, and with
``DriftloopMiddleware`` inside, at 1 and 32 concurrent clients, in one run.

Everything runs on loopback: one ``driftloop monitor`` (SQLite) receives the records, so capture
and shipping are really working during the measurement. A second pair isolates the sidecar's own
cost from BentoML's: a bare uvicorn app answering the same JSON, called directly and through a
sidecar. For each target the CPU time the serving process (with its children) spent per request
is reported too: on a shared, oversubscribed machine latency mostly measures scheduling delays,
CPU per request does not. The load client is a closed loop of
keep-alive HTTP/1.1 connections over raw asyncio streams (not wrk, which misreports latency
against BentoML at one connection). Targets (ARCHITECTURE §7): added median latency under 1 ms,
throughput at least 85 % of direct at 32 clients.

    .venv/bin/python bench/sidecar.py [--seconds 5] [--rounds 2] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.procs import MonitorProcess, free_port
from tests.serving.procs import BentoProcess, SidecarProcess

ROW = {"sepal length (cm)": 5.8, "sepal width (cm)": 2.7, "petal length (cm)": 5.1,
       "petal width (cm)": 1.9}  # fmt: skip
BODY = json.dumps({"inputs": [ROW]}).encode()


# -- load client ------------------------------------------------------------------------------
@dataclass
class Result:
    """Latencies (seconds) of answered requests, wall time, and non-200 answers."""

    latencies: list[float]
    seconds: float
    errors: int
    warmup_answered: int = 0

    @property
    def answered(self) -> int:
        """Requests answered 200, warm-up included (each one must become a record)."""
        return len(self.latencies) + self.warmup_answered

    def quantile(self, q: float) -> float:
        values = sorted(self.latencies)
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


async def _client(host: str, port: int, request: bytes, stop: float, out: list[float]) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    try:
        while time.perf_counter() < stop:
            start = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if b" 200 " in status_line:
                out.append(time.perf_counter() - start)
            else:
                errors += 1
    finally:
        writer.close()
    return errors


async def _load(url: str, clients: int, seconds: float, warmup: float) -> Result:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY
    stop = time.perf_counter() + warmup
    warm: list[float] = []
    await asyncio.gather(*[_client(host, port, request, stop, warm) for _ in range(clients)])
    latencies: list[float] = []
    begin = time.perf_counter()
    errors = await asyncio.gather(
        *[_client(host, port, request, begin + seconds, latencies) for _ in range(clients)]
    )
    return Result(latencies, time.perf_counter() - begin, sum(errors), len(warm))


def load(url: str, clients: int, seconds: float, warmup: float = 1.0) -> Result:
    """Closed-loop load on ``url`` with ``clients`` keep-alive connections."""
    import uvloop

    return uvloop.run(_load(url, clients, seconds, warmup))


# -- CPU accounting ---------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its children so far."""
    import psutil

    total = 0.0
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            times = proc.cpu_times()
            total += times.user + times.system
    except psutil.Error:
        pass
    return total


BARE_APP = """
import sys, uvicorn
ANSWER = (b'[{"prediction": 2, "probabilities": {"0": 0.001, "1": 0.2, "2": 0.799}}]')
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]})
    await send({"type": "http.response.body", "body": ANSWER})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False,
            http="httptools", loop="uvloop")
"""


# -- set-up ------------------------------------------------------------------------------------
def build(work: Path, env: dict[str, str]) -> tuple[str, str]:
    """Fit iris and build it twice: plain, and with the middleware attached."""
    script = f"""
import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from driftloop.serving.bento import build_bento
w = {str(work)!r}
data = load_iris(as_frame=True)
joblib.dump(LogisticRegression(max_iter=500).fit(data.data, data.target), w + "/m.pkl")
data.data.to_csv(w + "/ref.csv", index=False)
plain = build_bento(w + "/m.pkl", w + "/ref.csv", "bench-plain", smoke=False)
mw = build_bento(w + "/m.pkl", w + "/ref.csv", "bench-mw", smoke=False, capture=True)
print(plain.bento_tag, mw.bento_tag)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, **env}, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    plain, mw = done.stdout.split()[-2:]
    return plain, mw


def wait_port(url: str, timeout: float = 30.0) -> None:
    """Wait until ``url`` accepts HTTP."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.post(f"{url}/predict", content=BODY, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer")


def wait_stored(monitor_url: str, answered: dict[str, int], timeout: float = 60) -> dict[str, int]:
    """Records the monitor holds per model, once it holds every answered one (or timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        stored = {
            m: httpx.get(f"{monitor_url}/v1/models/{m}").json().get("record_count", 0)
            for m in answered
        }
        if all(stored[m] >= n for m, n in answered.items()) or time.monotonic() > deadline:
            return stored
        time.sleep(0.5)


def summary(runs: list[Result]) -> dict[str, float]:
    """Median over rounds of p50, p99 (ms) and throughput (req/s)."""
    summary: dict[str, float] = {
        "p50_ms": statistics.median(r.quantile(0.5) for r in runs) * 1000,
        "p99_ms": statistics.median(r.quantile(0.99) for r in runs) * 1000,
        "rps": statistics.median(r.throughput for r in runs),
        "errors": sum(r.errors for r in runs),
    }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="Measured time per run.")
    parser.add_argument("--rounds", type=int, default=2, help="Interleaved rounds (median).")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="driftloop-bench-sidecar-") as tmp:
        work = Path(tmp)
        env = {
            "BENTOML_HOME": str(work / "bentoml"),
            "BENTOML_DO_NOT_TRACK": "True",
            "XDG_STATE_HOME": str(work / "xdg-state"),
        }  # the capture logs' default folder
        plain_tag, mw_tag = build(work, env)
        monitor = MonitorProcess(f"sqlite:///{work / 'bench.db'}", work).start()
        procs: list[Any] = []
        bare: subprocess.Popen[bytes] | None = None
        try:
            # Each `bentoml serve` empties $BENTOML_HOME/prometheus_multiproc_dir at start-up,
            # under the feet of a Bento already running: start them one after the other, the
            # middleware's first (its metrics are not read here).
            mw_env = {**env, "DRIFTLOOP_MONITOR_URL": monitor.url,
                      "DRIFTLOOP_MODEL_VERSION": "v1"}  # fmt: skip
            middleware = BentoProcess("middleware", mw_tag, work, mw_env)
            procs.append(middleware)
            middleware.wait()
            direct = BentoProcess("direct", plain_tag, work, env)
            procs.append(direct)
            direct.wait()
            sidecar = SidecarProcess(
                "sidecar",
                [
                    "--model",
                    "bench-sidecar",
                    "--champion",
                    direct.url,
                    "--champion-version",
                    "v1",
                    "--monitor",
                    monitor.url,
                ],
                work,
            )
            procs.append(sidecar)
            bare_port = free_port()
            bare = subprocess.Popen([sys.executable, "-c", BARE_APP, str(bare_port)])
            bare_url = f"http://127.0.0.1:{bare_port}"
            wait_port(bare_url)
            bare_sidecar = SidecarProcess(
                "bare-sidecar",
                ["--model", "bench-bare", "--champion", bare_url, "--monitor", monitor.url],
                work,
            )
            procs.append(bare_sidecar)
            # name -> (url, pid whose CPU is the price of this target)
            targets = {
                "direct": (f"{direct.url}/predict", direct.process.pid),
                "sidecar": (f"{sidecar.url}/predict", sidecar.process.pid),
                "middleware": (f"{middleware.url}/predict", middleware.process.pid),
                "bare": (f"{bare_url}/predict", bare.pid),
                "bare+sidecar": (f"{bare_sidecar.url}/predict", bare_sidecar.process.pid),
            }
            runs: dict[tuple[str, int], list[Result]] = {}
            cpu: dict[tuple[str, int], list[float]] = {}
            for _ in range(args.rounds):
                for clients in (1, 32):
                    for name, (url, pid) in targets.items():
                        before = cpu_seconds(pid)
                        result = load(url, clients, args.seconds, warmup=0.5)
                        spent = cpu_seconds(pid) - before  # includes the warm-up requests
                        runs.setdefault((name, clients), []).append(result)
                        requests = len(result.latencies) * (1 + 0.5 / args.seconds)
                        cpu.setdefault((name, clients), []).append(spent / max(requests, 1))
            answered = {
                model: sum(r.answered for (n, _), rs in runs.items() if n == name for r in rs)
                for name, model in (("sidecar", "bench-sidecar"), ("middleware", "bench-mw"),
                                    ("bare+sidecar", "bench-bare"))
            }  # fmt: skip
            stored = wait_stored(monitor.url, answered)
        finally:
            for proc in reversed(procs):
                proc.stop()
            if bare is not None:
                bare.terminate()
                bare.wait()
            monitor.stop()

    table = {f"{name}@{c}": summary(rs) for (name, c), rs in runs.items()}
    for (name, c), values in cpu.items():
        table[f"{name}@{c}"]["cpu_us_per_req"] = statistics.median(values) * 1e6
    comparisons: dict[str, dict[str, Any]] = {}
    for clients in (1, 32):
        for name, base_name in (("sidecar", "direct"), ("middleware", "direct"),
                                ("bare+sidecar", "bare")):  # fmt: skip
            base, row = table[f"{base_name}@{clients}"], table[f"{name}@{clients}"]
            comparisons[f"{name}@{clients}"] = {
                "vs": base_name,
                "added_p50_ms": row["p50_ms"] - base["p50_ms"],
                "added_p99_ms": row["p99_ms"] - base["p99_ms"],
                "throughput_ratio": row["rps"] / base["rps"],
            }
    lost = {m: answered[m] - stored[m] for m in answered}
    cpu_ratio = {
        c: table[f"bare+sidecar@{c}"]["cpu_us_per_req"] / table[f"bare@{c}"]["cpu_us_per_req"]
        for c in (1, 32)
    }
    if args.json:
        document = {"runs": table, "vs_peer": comparisons, "answered": answered,
                    "stored": stored, "lost": lost, "cpu_ratio": cpu_ratio}  # fmt: skip
        print(json.dumps(document, indent=2))
        return
    print(f"{args.rounds} rounds x {args.seconds:.0f} s per target, 1-row iris requests")
    print(f"{'target':<18}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'errors':>8}{'CPU us/req':>12}")
    for key, row in table.items():
        print(f"{key:<18}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['rps']:>9.0f}"
              f"{row['errors']:>8.0f}{row['cpu_us_per_req']:>12.0f}")  # fmt: skip
    print(f"\n{'compared':<18}{'peer':>8}{'+p50 ms':>9}{'+p99 ms':>9}{'ratio':>8}")
    for key, row in comparisons.items():
        print(f"{key:<18}{row['vs']:>8}{row['added_p50_ms']:>9.2f}{row['added_p99_ms']:>9.2f}"
              f"{row['throughput_ratio']:>8.2f}")  # fmt: skip
    print("\ncapture: the crash-safe on-disk log (default folder, fsync every 1 s)")
    print(f"requests answered (warm-up included): {answered}")
    print(f"records stored by the monitor: {stored}")
    print(f"records lost (answered - stored): {lost}")
    print(
        f"sidecar CPU per request / bare app's: {cpu_ratio[1]:.1f}x at 1 client, "
        f"{cpu_ratio[32]:.1f}x at 32 (target <= 5x)"
    )
    side = comparisons["sidecar@32"]
    print(
        f"targets: added p50 < 1 ms (@1: {comparisons['sidecar@1']['added_p50_ms']:.2f} ms), "
        f"throughput >= 0.85 of direct at 32 clients ({side['throughput_ratio']:.2f})"
    )


if __name__ == "__main__":
    main()
