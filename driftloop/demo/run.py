"""The demo's script: each step talks to real processes over HTTP and shows the outcome."""

from __future__ import annotations

import gzip
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from driftloop.demo.procs import ProcessGroup, free_port, wait_http


def synthetic_records(count: int, model: str = "iris") -> list[dict[str, Any]]:
    """Records of an iris classifier: features from scikit-learn's bundled iris data."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    names = [n.replace(" (cm)", "").replace(" ", "_") for n in iris.feature_names]
    start = datetime.now(UTC) - timedelta(seconds=count)
    out = []
    for i in range(count):
        row = iris.data[i % len(iris.data)]
        target = int(iris.target[i % len(iris.data)])
        out.append(
            {
                "request_id": uuid.uuid4().hex,
                "model": model,
                "version": "v1",
                "variant": "champion",
                "timestamp": (start + timedelta(seconds=i)).isoformat(),
                "inputs": dict(zip(names, map(float, row), strict=True)),
                "outputs": {"prediction": str(iris.target_names[target])},
                "latency_ms": 2.0,
                "status": 200,
            }
        )
    return out


def send(client: httpx.Client, url: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """POST one gzip batch; returns the monitor's counts."""
    body = gzip.compress(
        json.dumps({"batch_id": uuid.uuid4().hex, "source": "demo", "records": records}).encode()
    )
    response = client.post(
        f"{url}/v1/records",
        content=body,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def run_demo(*, workdir: str | None = None, keep: bool = False, records: int = 2000) -> int:
    """Run the demo; returns the exit code."""
    console = Console()
    root = Path(workdir or tempfile.mkdtemp(prefix="driftloop-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    group = ProcessGroup(root)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        console.rule("[bold]Driftloop demo")
        console.print(f"working folder: {root}")
        monitor = group.driftloop(
            "monitor",
            "monitor",
            "--port",
            str(port),
            "--database-url",
            f"sqlite:///{root / 'driftloop.db'}",
        )
        wait_http(f"{url}/readyz", 60, monitor)
        console.print(f"monitor ready at {url}")
        rows = synthetic_records(records)
        stored = 0
        with httpx.Client(timeout=30) as client, Progress(console=console, transient=True) as bar:
            task = bar.add_task("sending records", total=len(rows))
            for i in range(0, len(rows), 250):
                stored += send(client, url, rows[i : i + 250])["stored"]
                bar.advance(task, len(rows[i : i + 250]))
            again = send(client, url, rows[:250])
            detail = client.get(f"{url}/v1/models/iris").json()
        table = Table(title="What the monitor stored")
        table.add_column("model")
        table.add_column("version")
        table.add_column("variant")
        table.add_column("records", justify="right")
        for version, variants in detail["records_by_version"].items():
            for variant, count in variants.items():
                table.add_row(detail["name"], version, variant, str(count))
        console.print(table)
        console.print(
            f"sent {len(rows)}, stored {stored}; resending 250 stored {again['stored']} "
            f"more ({again['duplicates']} duplicates ignored)"
        )
        console.print(f"features inferred: {[f['name'] for f in detail['schema']['features']]}")
        if keep:
            console.print(f"[bold]--keep:[/] the monitor stays up at {url} (Ctrl-C to stop)")
            while True:
                time.sleep(3600)
        return 0 if stored == len(rows) and again["stored"] == 0 else 1
    except KeyboardInterrupt:
        console.print("stopping")
        return 130
    finally:
        group.stop()
