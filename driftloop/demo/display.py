"""The demo's live view: one row per step, its state and what it found."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.console import Group, RenderableType
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text


@dataclass
class Step:
    """One step of the demo."""

    title: str
    state: str = "waiting"  # waiting | running | done | failed | skipped
    detail: str = ""
    started: float | None = None
    ended: float | None = None

    @property
    def seconds(self) -> float | None:
        """How long the step ran (so far)."""
        if self.started is None:
            return None
        return (self.ended or time.monotonic()) - self.started


@dataclass
class Board:
    """Every step, and the free-form status line under them."""

    steps: list[Step] = field(default_factory=list)
    status: str = ""

    def add(self, title: str) -> Step:
        """Add a step."""
        step = Step(title)
        self.steps.append(step)
        return step

    def __rich__(self) -> RenderableType:
        table = Table(show_header=True, header_style="bold", expand=True, box=None)
        table.add_column("", width=2)
        table.add_column("step", ratio=3)
        table.add_column("outcome", ratio=5)
        table.add_column("s", justify="right", width=6)
        icons = {"waiting": "·", "done": "[green]✔", "failed": "[red]✘", "skipped": "[yellow]–"}
        for step in self.steps:
            icon: RenderableType = (
                Spinner("dots", style="cyan") if step.state == "running" else icons[step.state]
            )
            seconds = f"{step.seconds:.0f}" if step.seconds is not None else ""
            table.add_row(icon, step.title, step.detail, seconds)
        return Group(table, Text(self.status, style="dim"))
