"""Progress for long commands: a bar on a terminal, one plain line per step anywhere else.

On a terminal (stderr is a TTY) :class:`Progress` draws a rich bar per stage; the counter column
copes with stages whose total is not known yet (rich's ``{task.total:,.0f}`` format does not: it
raised ``TypeError`` on ``None`` in a real terminal). When stderr is a file or a pipe (CI logs,
``| tee``) it prints one line when a stage starts, at most one every ``interval`` seconds while it
runs, and one when it ends, so a log shows where a slow command is without control characters.
Progress always goes to stderr: stdout stays for results (``--json``).
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any, TextIO

__all__ = ["Progress"]


def _count(done: float, total: float | None, unit: str) -> str:
    if unit == "steps":
        return ""
    if unit == "bytes":
        return f"{_bytes(done)}/{_bytes(total)}" if total is not None else _bytes(done)
    return f"{done:,.0f}/{total:,.0f}" if total is not None else f"{done:,.0f}"


def _bytes(value: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    return f"{value:,.1f} GB"  # pragma: no cover - the loop always returns


class Progress:
    """Stages of a command with ``update(stage, done, total)``; use as a context manager.

    ``enabled=False`` prints nothing. ``terminal`` overrides the TTY detection (tests).
    """

    def __init__(
        self,
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        terminal: bool | None = None,
        interval: float = 5.0,
    ) -> None:
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = self._isatty() if terminal is None else terminal
        self.interval = interval
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}
        self._last: dict[str, float] = {}
        self._started: dict[str, float] = {}
        self._finished: set[str] = set()
        self._units: dict[str, str] = {}

    def _isatty(self) -> bool:
        try:
            return bool(self.stream.isatty())
        except (AttributeError, ValueError):
            return False

    def __enter__(self) -> Progress:
        if self.enabled and self.terminal:
            from rich.console import Console
            from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[count]}"),
                TimeElapsedColumn(),
                console=Console(file=self.stream, force_terminal=True),
                transient=False,
            )
            self._bar.__enter__()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(t, e, tb)
            self._bar = None

    def update(
        self, stage: str, done: float, total: float | None = None, *, unit: str = "rows"
    ) -> None:
        """Stage ``stage`` has done ``done`` of ``total`` (``None``: not known yet)."""
        if not self.enabled:
            return
        total = None if total is None or total < 0 else total
        unit = self._units.setdefault(stage, unit)
        count = _count(done, total, unit)
        if self._bar is not None:
            if stage not in self._tasks:
                self._tasks[stage] = self._bar.add_task(stage, total=total, count=count)
            self._bar.update(self._tasks[stage], completed=done, total=total, count=count)
            return
        finished = total is not None and done >= total
        now = time.monotonic()
        first = stage not in self._last
        if stage in self._finished:
            return
        if first:
            self._started[stage] = now
        if first or finished or now - self._last[stage] >= self.interval:
            self._last[stage] = now
            if finished:
                seconds = now - self._started[stage]
                line = f"{stage}: done" + (f", {count}" if count else "") + f" in {seconds:.1f} s"
            elif first and not done:
                line = f"{stage}: started"
            else:
                line = f"{stage}: {count}"
            print(line, file=self.stream, flush=True)
        if finished:
            self._finished.add(stage)

    def step(self, stage: str) -> _Step:
        """A stage of one step (no count): ``with progress.step("reading x.csv"): ...``."""
        return _Step(self, stage)


class _Step:
    def __init__(self, progress: Progress, stage: str) -> None:
        self.progress = progress
        self.stage = stage

    def __enter__(self) -> None:
        self.progress.update(self.stage, 0, 1, unit="steps")

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if t is None:
            self.progress.update(self.stage, 1, 1, unit="steps")
