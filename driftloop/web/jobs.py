"""Periodic jobs, run by one leader among the monitor replicas.

APScheduler 3 cannot share a job store between running schedulers, so every replica schedules the
same jobs in memory and each run first checks leadership, with the leader lock of the database's
dialect (``Dialect.leader_lock``): on PostgreSQL a session-level advisory lock held on a dedicated
connection (released by the server if the process dies); SQLite is single-process, so its monitor
is always the leader.

The runner knows the database, the metrics and the clock; the state the jobs work on is handed to
it when they run (:meth:`JobRunner.run_job`, :meth:`JobRunner.start`), so the runner and the state
do not import each other.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from driftloop.clock import Clock
from driftloop.store.dialect import dialect_of
from driftloop.web.metrics import MonitorMetrics

__all__ = ["LEADER_LOCK_KEY", "Job", "JobRunner"]

log = logging.getLogger(__name__)

LEADER_LOCK_KEY = 0x44524946544C4F4F  # "DRIFTLOO"
S = TypeVar("S")


@dataclass(frozen=True)
class Job(Generic[S]):
    """A named function run every ``interval`` seconds by the leader."""

    name: str
    interval: float
    func: Callable[[S], None]


class JobRunner(Generic[S]):
    """Holds the job table, elects the leader and runs the jobs on the state it is given."""

    def __init__(self, engine: Engine, metrics: MonitorMetrics, clock: Clock) -> None:
        self.jobs: dict[str, Job[S]] = {}
        self.engine = engine
        self.metrics = metrics
        self.clock = clock
        self._scheduler: BackgroundScheduler | None = None
        self._leader_lock = dialect_of(engine).leader_lock(engine, LEADER_LOCK_KEY)
        self._run_lock = threading.Lock()
        self._attempted: set[str] = set()

    def add(self, name: str, interval: float, func: Callable[[S], None]) -> None:
        """Add a job; names are unique."""
        if name in self.jobs:
            raise ValueError(f"job {name!r} is already registered")
        self.jobs[name] = Job(name, interval, func)

    def is_leader(self) -> bool:
        """Try to hold the leader lock; True when this process holds it."""
        leader = self._leader_lock.acquire()
        self.metrics.leader.set(1 if leader else 0)
        return leader

    def run_job(self, name: str, state: S) -> None:
        """Run one job on ``state`` now if this process is the leader; errors are logged and
        counted."""
        job = self.jobs[name]
        with self._run_lock:
            if not self.is_leader():
                return
            last_success = self.metrics.job_last_success.labels(name)
            if name not in self._attempted:  # staleness counts from the first attempt
                self._attempted.add(name)
                last_success.set(self.clock.now().timestamp())
            start = time.perf_counter()
            try:
                job.func(state)
            except Exception:  # a job failing must not stop the scheduler
                log.exception("job %s failed", name)
                self.metrics.job_runs.labels(name, "error").inc()
            else:
                self.metrics.job_runs.labels(name, "ok").inc()
                last_success.set(self.clock.now().timestamp())
            finally:
                self.metrics.job_seconds.labels(name).observe(time.perf_counter() - start)

    def run_once(self, state: S) -> None:
        """Run every job once on ``state``, in registration order (tests, CLI, demo)."""
        for name in self.jobs:
            self.run_job(name, state)

    def start(self, state: S) -> None:
        """Schedule every job on ``state`` in a background thread."""
        scheduler = BackgroundScheduler(timezone="UTC")
        for job in self.jobs.values():
            self.metrics.job_interval.labels(job.name).set(job.interval)
            scheduler.add_job(
                self.run_job,
                "interval",
                seconds=job.interval,
                args=[job.name, state],
                id=job.name,
                coalesce=True,
                max_instances=1,
            )
        scheduler.start()
        self._scheduler = scheduler

    def stop(self) -> None:
        """Stop the scheduler and release the leader lock."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        self._leader_lock.release()
