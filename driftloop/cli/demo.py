"""``driftloop demo``: the whole loop on one machine, on embedded defaults."""

from __future__ import annotations

import typer


def demo(
    workdir: str | None = typer.Option(
        None, help="Where the demo keeps its database and files (default: a temporary folder)."
    ),
    keep: bool = typer.Option(False, "--keep", help="Leave everything running at the end."),
    records: int = typer.Option(2000, min=10, help="How many synthetic records to send."),
) -> None:
    """Start a monitor on a temporary SQLite file, send records, and show what was stored."""
    from driftloop.demo import run_demo

    raise typer.Exit(run_demo(workdir=workdir, keep=keep, records=records))
