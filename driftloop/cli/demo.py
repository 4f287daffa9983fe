"""``driftloop demo``: the whole loop on one machine, on embedded defaults."""

from __future__ import annotations

import typer


def demo(
    workdir: str | None = typer.Option(
        None, help="Where the demo keeps its database, Bentos and logs (default: a temp folder)."
    ),
    keep: bool = typer.Option(False, "--keep", help="Leave everything running at the end."),
    requests: int = typer.Option(
        1200, min=300, help="Requests replayed through the sidecar before drift is injected."
    ),
    rate: float = typer.Option(30.0, min=1.0, help="Requests per second."),
) -> None:
    """Train, serve, monitor, detect drift, retrain, compare and promote: the whole loop."""
    from driftloop.demo import run_demo

    raise typer.Exit(run_demo(workdir=workdir, keep=keep, requests=requests, rate=rate))
