"""The demo: the whole loop on one machine, real processes on loopback, SQLite, no tokens.

champion trained → wrapped as a Bento → served behind the sidecar → traffic replayed with labels
fed back late → drift injected → drift detected → retraining trigger → signed webhook to the
training receiver → challenger trained on the snapshot → wrapped, served, registered through the
callback → shadow and canary rollout → promoted (or rolled back). Every outcome shown is read
back from the monitor's API.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from rich.console import Console
from rich.live import Live
from rich.table import Table

from driftloop.demo.data import FEATURES, LABEL, iris_frame, traffic, train
from driftloop.demo.display import Board, Step
from driftloop.demo.procs import ProcessGroup, free_port, wait_http
from driftloop.demo.traffic import Replay
from driftloop.demo.trainer import Receiver, ReceiverServer

MODEL = "iris"
DRIFTED_REQUESTS = 30_000
SECRET = "whsec_" + "ZHJpZnRsb29wLWRlbW8tc2VjcmV0LWtleQ=="  # base64("driftloop-demo-secret-key")


class DemoFailed(RuntimeError):
    """A step did not reach its outcome in time, or the loop did not close as documented."""


class Demo:
    """Holds the processes, URLs and the live board of one demo run."""

    def __init__(self, root: Path, console: Console, *, requests: int, rate: float) -> None:
        self.root = root
        self.console = console
        self.group = ProcessGroup(root)
        self.board = Board()
        self.http = httpx.Client(timeout=30)
        self.monitor = f"http://127.0.0.1:{free_port()}"
        self.sidecar = f"http://127.0.0.1:{free_port()}"
        self.receiver_port = free_port()
        self.receiver = Receiver(SECRET)
        self.receiver_server = ReceiverServer(self.receiver, self.receiver_port)
        # Drifted traffic goes on after the clean part until the loop has run its course; the
        # replay stops with the demo, long before the end of this list.
        self.requests = traffic(requests + DRIFTED_REQUESTS, drift_from=requests)
        self.rate = rate
        self.replay: Replay | None = None
        self.bento_env = {"BENTOML_HOME": str(root / "bentoml"), "BENTOML_DO_NOT_TRACK": "True"}
        # Not a terminal (CI, a pipe, a log file): a live table would only print at the end, so
        # progress goes out line by line instead.
        self.plain = not console.is_terminal
        self._said = ""
        self._said_at = 0.0

    def say(self, text: str, *, every: float = 0.0) -> None:
        """One progress line when output is not a terminal (``every``: at most that often)."""
        if not self.plain or not text:
            return
        now = time.monotonic()
        if text == self._said or (every and now - self._said_at < every):
            return
        self._said, self._said_at = text, now
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    # ----------------------------------------------------------------- helpers
    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the monitor; raise on a non-2xx answer."""
        response = self.http.request(method, f"{self.monitor}{path}", **kwargs)
        if response.is_error:
            raise DemoFailed(f"{method} {path}: HTTP {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    def wait_for(
        self, step: Step, check: Callable[[], str | None], timeout: float, what: str
    ) -> str:
        """Poll ``check`` (returns an outcome text once reached) until ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            outcome = check()
            if outcome:
                return outcome
            self.board.status = self._traffic_line()
            self.say(f"  {self.board.status}", every=15.0)
            time.sleep(1.0)
        raise DemoFailed(f"{step.title}: {what} did not happen within {timeout:.0f} s")

    def _traffic_line(self) -> str:
        if self.replay is None:
            return ""
        s = self.replay.stats
        split = ", ".join(f"{k} {v}" for k, v in sorted(s.variants.items()))
        drift = "drift ON" if self.replay.drifted else "no drift"
        return f"traffic: {s.sent} sent ({split}), {s.failed} failed, {s.labeled} labeled · {drift}"

    def run_step(self, title: str, action: Callable[[Step], str]) -> None:
        """Run one step, recording its outcome on the board."""
        step = self.board.add(title)
        step.state, step.started = "running", time.monotonic()
        self.say(f"[{len(self.board.steps)}] {title} ...")
        try:
            step.detail = action(step)
            step.state = "done"
        except Exception as exc:
            step.state, step.detail = "failed", str(exc)[:600]
            raise
        finally:
            step.ended = time.monotonic()
            mark = "done" if step.state == "done" else "FAILED"
            self.say(f"    {mark} in {step.seconds or 0:.0f} s: {step.detail}")

    def build_bento(self, model_path: Path, reference: Path) -> str:
        """``driftloop bento build`` in a subprocess; returns the Bento tag."""
        flags = {
            "--model": str(model_path),
            "--reference": str(reference),
            "--name": MODEL,
            "--label-column": LABEL,
        }
        result = subprocess.run(
            [sys.executable, "-m", "driftloop", "bento", "build", *as_args(flags), "--no-smoke"],
            capture_output=True,
            text=True,
            env={**os.environ, **self.bento_env},
            timeout=300,
        )
        if result.returncode != 0:
            raise DemoFailed(f"bento build failed: {result.stderr[-500:]}")
        tag: str = json.loads(result.stdout[result.stdout.index("{") :])["bento_tag"]
        return tag

    def serve_bento(self, name: str, tag: str) -> str:
        """``bentoml serve`` the Bento on a free port; returns its URL once ready."""
        port = free_port()
        address = {"--host": "127.0.0.1", "--port": str(port)}
        process = self.group.start(
            name,
            [sys.executable, "-m", "bentoml", "serve", tag, *as_args(address)],
            self.bento_env,
        )
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/readyz", 120, process)
        return url

    # ------------------------------------------------------------------- steps
    def train_champion(self, _step: Step) -> str:
        frame = iris_frame()
        frame.to_csv(self.root / "reference.csv", index=False)
        accuracy = train(frame, str(self.root / "champion.joblib"))
        return f"logistic regression on iris ({len(frame)} rows), training accuracy {accuracy:.1%}"

    def wrap_champion(self, _step: Step) -> str:
        tag = self.build_bento(self.root / "champion.joblib", self.root / "reference.csv")
        self.champion_url = self.serve_bento("bento-v1", tag)
        return f"Bento {tag} serving at {self.champion_url}"

    def start_services(self, _step: Step) -> str:
        env = {
            "DRIFTLOOP_DATABASE_URL": f"sqlite:///{self.root / 'driftloop.db'}",
            "DRIFTLOOP_WEBHOOK_URL": f"http://127.0.0.1:{self.receiver_port}/webhooks/retrain",
            "DRIFTLOOP_WEBHOOK_SECRET": SECRET,
            "DRIFTLOOP_SNAPSHOT_DIR": str(self.root / "snapshots"),
            "DRIFTLOOP_RETRAIN__CALLBACK_BASE_URL": self.monitor,
            "DRIFTLOOP_JOBS__INTERVAL_SECONDS": "3",
            "DRIFTLOOP_RETRAIN__EVALUATE_INTERVAL_SECONDS": "2",
            "DRIFTLOOP_WEBHOOKS__DELIVER_INTERVAL_SECONDS": "1",
            "DRIFTLOOP_DRIFT__WINDOW_MINUTES": "1",
            "DRIFTLOOP_ROLLOUT__EVALUATE_INTERVAL_SECONDS": "2",
            "DRIFTLOOP_ROLLOUT__STEPS": "[0.5, 1.0]",
            "DRIFTLOOP_ROLLOUT__MIN_STEP_SAMPLES": "40",
            "DRIFTLOOP_ROLLOUT__MIN_STEP_SECONDS": "5",
            "DRIFTLOOP_ROLLOUT__MIN_COMPARE_SAMPLES": "30",
            "DRIFTLOOP_ROLLOUT__TUNING_SAMPLES": "200",
            "DRIFTLOOP_ROLLOUT__SRM_GRACE_SECONDS": "5",
        }
        port = self.monitor.rsplit(":", 1)[1]
        monitor = self.group.driftloop("monitor", "monitor", "--port", port, env=env)
        wait_http(f"{self.monitor}/readyz", 60, monitor)
        self.receiver_server.start()
        sidecar_port = self.sidecar.rsplit(":", 1)[1]
        admin_port = free_port()
        flags = {
            "--model": MODEL,
            "--champion": self.champion_url,
            "--champion-version": "v1",
            "--monitor": self.monitor,
            "--port": sidecar_port,
            "--admin-port": str(admin_port),
            "--spool-dir": str(self.root / "spool"),
            "--poll-seconds": "1",
        }
        sidecar = self.group.driftloop("sidecar", "sidecar", *as_args(flags))
        wait_http(f"http://127.0.0.1:{admin_port}/readyz", 60, sidecar)
        return f"monitor {self.monitor}, sidecar {self.sidecar}, receiver :{self.receiver_port}"

    def register(self, _step: Step) -> str:
        schema = {
            "features": [{"name": f, "kind": "numerical"} for f in FEATURES],
            "prediction": {
                "kind": "classification",
                "classes": sorted(iris_frame()[LABEL].unique().tolist()),
            },
            "label_column": LABEL,
        }
        self.api(
            "POST",
            "/v1/models",
            json={
                "name": MODEL,
                "schema": schema,
                "versions": [{"version": "v1", "role": "champion", "url": self.champion_url}],
            },
        )
        reference = (self.root / "reference.csv").read_bytes()
        self.api(
            "PUT",
            f"/v1/models/{MODEL}/reference?label_column={LABEL}",
            content=reference,
            headers={"content-type": "text/csv"},
        )
        self.api(
            "PUT",
            f"/v1/models/{MODEL}/retraining",
            json={
                "drift": {"dataset": True},
                "cooldown_seconds": 3600,
                # Drift must hold 20 s before it fires, and the snapshot keeps the last 30 s of
                # labeled rows (plus the reference): what the new model should learn from.
                "debounce_seconds": 20,
                "snapshot": {"window_seconds": 30},
            },
        )
        return "schema, reference (150 rows) and a retrain-on-drift policy registered"

    def replay_clean(self, step: Step) -> str:
        self.replay = Replay(self.sidecar, self.monitor, self.requests, rate=self.rate)
        self.replay.start()

        def enough() -> str | None:
            assert self.replay is not None
            if not self.replay.drifted:
                return None
            model = self.api("GET", f"/v1/models/{MODEL}")
            return f"{model['record_count']} records stored, {self.replay.stats.labeled} labeled"

        return self.wait_for(step, enough, 600, "the clean phase")

    def detect_drift(self, step: Step) -> str:
        def drifted() -> str | None:
            entries = self.api("GET", f"/v1/models/{MODEL}").get("drift") or []
            champion = [e for e in entries if e.get("variant") == "champion"]
            latest = (champion[0].get("reference") or {}) if champion else {}
            if not latest.get("dataset_drift"):
                return None
            flagged = [f["name"] for f in latest.get("features", []) if f.get("drifted")]
            return f"dataset drift: {', '.join(flagged)} (share {latest.get('drifted_share')})"

        return self.wait_for(step, drifted, 240, "drift detection")

    def webhook(self, step: Step) -> str:
        def delivered() -> str | None:
            if self.receiver.triggers.empty():
                return None
            self.webhook_id, self.trigger = self.receiver.triggers.get()
            return (
                f"reason {self.trigger.get('reason')}, webhook-id {self.webhook_id}, "
                f"signature verified; snapshot {self.trigger['dataset']['rows']} rows"
            )

        return self.wait_for(step, delivered, 240, "the signed retraining webhook")

    def train_challenger(self, _step: Step) -> str:
        dataset = self.trigger["dataset"]
        frame = pd.read_parquet(dataset["uri"])
        label = "label" if "label" in frame.columns else LABEL
        rows = frame.dropna(subset=[label]).rename(columns={label: LABEL})
        accuracy = train(rows, str(self.root / "challenger.joblib"))
        tag = self.build_bento(self.root / "challenger.joblib", self.root / "reference.csv")
        self.challenger_url = self.serve_bento("bento-v2", tag)
        version = "v2"
        self.api(
            "POST",
            f"/v1/models/{MODEL}/versions",
            json={
                "version": version,
                "url": self.challenger_url,
                "snapshot_id": dataset.get("snapshot_id"),
                "webhook_id": self.webhook_id,
                "trigger_id": self.trigger.get("trigger_id"),
                "code_revision": "demo",
                "metrics": {"train_accuracy": accuracy},
            },
        )
        return f"trained on {len(rows)} snapshot rows, served at {self.challenger_url}, registered"

    def rollout(self, step: Step) -> str:
        def decided() -> str | None:
            body = self.api("GET", f"/v1/models/{MODEL}/rollout")
            rollout = body["rollout"]
            status = rollout.get("status")
            self.board.steps[-1].detail = f"{status}, step {rollout.get('step')}"
            self.say(f"  rollout: {status}, step {rollout.get('step')} ({rollout.get('mode')})")
            if status == "promoted":
                decisions = len(body["decisions"])
                return f"challenger promoted after {decisions} decisions"
            if status in ("rolled_back", "superseded"):
                raise DemoFailed(why_not_promoted(body))
            return None

        return self.wait_for(step, decided, 480, "a rollout decision")

    def after_decision(self, step: Step) -> str:
        routing = self.api("GET", f"/v1/models/{MODEL}/routing")
        before = self.served_by_version()

        def observed() -> str | None:
            now = self.served_by_version()
            delta = {k: n - before.get(k, 0) for k, n in now.items() if n > before.get(k, 0)}
            if sum(delta.values()) < 60:
                return None
            shares = ", ".join(f"{k} {n}" for k, n in sorted(delta.items()))
            champion = routing["champion"]["version"]
            if champion != "v2":
                raise DemoFailed(f"routing still sends everything to {champion}, not v2")
            return f"routing {routing['mode']}: all to {champion}; records since: {shares}"

        return self.wait_for(step, observed, 120, "traffic after the decision")

    def served_by_version(self) -> dict[str, int]:
        """Records stored so far per version (all variants)."""
        model = self.api("GET", f"/v1/models/{MODEL}")
        return {v: sum(c.values()) for v, c in model["records_by_version"].items()}

    # --------------------------------------------------------------- the run
    def run(self, keep: bool) -> int:
        steps: list[tuple[str, Callable[[Step], str]]] = [
            ("Train the champion", self.train_champion),
            ("Wrap it as a Bento and serve it", self.wrap_champion),
            ("Start the monitor, sidecar and training receiver", self.start_services),
            ("Register the model, its reference and retraining policy", self.register),
            ("Replay traffic, labels fed back 2 s late", self.replay_clean),
            ("Inject drift: detect it", self.detect_drift),
            ("Retraining webhook to the training system", self.webhook),
            ("Train, wrap and register the challenger", self.train_challenger),
            ("Shadow, then canary: compare and decide", self.rollout),
            ("Traffic follows the decision", self.after_decision),
        ]
        code = 0
        live = (
            contextlib.nullcontext()
            if self.plain
            else Live(self.board, console=self.console, refresh_per_second=4, transient=False)
        )
        with live:
            try:
                for title, action in steps:
                    self.run_step(title, action)
            except Exception as exc:  # the demo ends with its board and summary whatever broke
                self.board.status = f"[failed] {exc}"
                code = 1
        self.print_summary()
        if code:
            self.console.print(
                f"The loop did not close as documented: {self.board.status}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        if keep and code == 0:
            self.console.print(
                f"[bold]--keep:[/] everything stays up; status page {self.monitor}/ (Ctrl-C stops)"
            )
            while True:
                time.sleep(3600)
        return code

    def print_summary(self) -> None:
        """What happened, and where to look next."""
        try:
            current = self.api("GET", f"/v1/models/{MODEL}/performance")
        except (DemoFailed, httpx.HTTPError):
            return
        table = Table(title="Accuracy by version and variant (every labeled row of the demo)")
        for column in ("version", "variant", "accuracy", "95% interval", "n"):
            table.add_column(column)
        for row in performance_rows({"windows": {"all": current}}):
            table.add_row(*row)
        self.console.print(table)
        self.console.print(
            f"status page: {self.monitor}/   API docs: {self.monitor}/docs   "
            f"metrics: {self.monitor}/metrics\nlogs and data: {self.root}"
        )


def why_not_promoted(body: dict[str, Any]) -> str:
    """Why a rollout ended otherwise than promotion: its last decision and the evidence."""
    rollout = body.get("rollout") or {}
    decisions = body.get("decisions") or [{}]
    last = decisions[-1]
    evidence = last.get("evidence") or {}
    difference = evidence.get("difference") or {}
    values = evidence.get("metric_values") or {}
    guard = evidence.get("guardrails") or {}
    latency = guard.get("latency_p99") or {}
    errors = guard.get("error_rate") or {}
    parts = [
        f"challenger {str(rollout.get('status', '?')).replace('_', ' ')} at step "
        f"{last.get('from_step')} by {last.get('actor')}: {last.get('reason')}",
        f"metric {evidence.get('metric')} champion {values.get('champion')} vs challenger "
        f"{values.get('challenger')}, difference interval [{difference.get('running_lower')}, "
        f"{difference.get('running_upper')}] against margin {evidence.get('margin')}",
        f"latency {latency.get('note')}: ok={latency.get('ok')}, champion p99 "
        f"{latency.get('champion_ms')} ms, challenger p99 {latency.get('challenger_ms')} ms",
        f"5xx share ok={errors.get('ok')}; split ok={(evidence.get('srm') or {}).get('ok')}",
    ]
    return "; ".join(parts)


def as_args(flags: dict[str, str]) -> list[str]:
    """``{"--flag": "value"}`` as a command line."""
    return [part for pair in flags.items() for part in pair]


def performance_rows(section: Any) -> list[tuple[str, ...]]:
    """Accuracy per version and variant from the performance section's shortest window."""
    rows: list[tuple[str, ...]] = []
    windows = section.get("windows") if isinstance(section, dict) else None
    if not windows:
        return rows
    window = next(iter(windows.values()))
    for version, variants in (window.get("versions") or {}).items():
        for variant, result in variants.items():
            metric = (result.get("metrics") or {}).get("accuracy") or {}
            if metric.get("value") is None:
                continue
            low, high = metric.get("lower", float("nan")), metric.get("upper", float("nan"))
            rows.append(
                (
                    str(version),
                    str(variant),
                    f"{metric['value']:.3f}",
                    f"[{low:.3f}, {high:.3f}]",
                    str(metric.get("n", "")),
                )
            )
    return rows


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(
    *, workdir: str | None = None, keep: bool = False, requests: int = 1200, rate: float = 30.0
) -> int:
    """Run the demo; returns the exit code (0 when every step reached its outcome)."""
    console = Console()
    root = Path(workdir or tempfile.mkdtemp(prefix="driftloop-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    console.rule("[bold]Driftloop demo: the whole loop on this machine")
    console.print(f"working folder: {root}")
    demo = Demo(root, console, requests=requests, rate=rate)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the demo as cleanly as Ctrl-C
    try:
        return demo.run(keep)
    except KeyboardInterrupt:
        console.print("interrupted: stopping every process the demo started")
        return 130
    finally:
        if demo.replay is not None:
            demo.replay.stop()
        demo.receiver_server.stop()
        demo.group.stop()
        demo.http.close()
