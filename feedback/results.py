"""The latest computed performance: written by the leader's periodic job, read by scrapes.

Results live in the ``performance_results`` table (so every replica serves the leader's figures)
and in memory (so a scrape costs no query while they are fresh).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from driftloop.feedback.performance import Options, windowed
from driftloop.store import LabelRow, Model, PerformanceResultRow
from driftloop.store.feedback import PENDING_MODEL

if TYPE_CHECKING:
    from driftloop.web.state import MonitorState

log = logging.getLogger(__name__)


class LatestResults:
    """Per model name, the newest windowed performance; refreshed from the table after ``ttl``."""

    def __init__(self, sessions: sessionmaker[Session], ttl: float = 15.0) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._results: dict[str, dict[str, Any]] = {}
        self._pending = 0
        self._loaded = float("-inf")
        self._lock = threading.Lock()
        self.version = 0
        """Changes whenever the results or the pending count change (scrapes cache by it)."""

    def put(self, results: dict[str, dict[str, Any]], pending: int) -> None:
        """Replace the results with freshly computed ones."""
        with self._lock:
            if results != self._results or pending != self._pending:
                self.version += 1
            self._results = dict(results)
            self._pending = pending
            self._loaded = time.monotonic()

    def current(self) -> tuple[dict[str, dict[str, Any]], int]:
        """The results and the number of pending labels, reloaded when stale."""
        if time.monotonic() - self._loaded > self._ttl:
            try:
                with self._sessions() as session:
                    self.put(*load(session))
            except SQLAlchemyError:
                log.warning("cannot reload performance results; serving the last ones")
        with self._lock:
            return dict(self._results), self._pending


def pending_labels(session: Session) -> int:
    """Labels whose request id no record has shown yet."""
    count = session.scalar(
        select(func.count()).select_from(LabelRow).where(LabelRow.model_id == PENDING_MODEL)
    )
    return int(count or 0)


def load(session: Session) -> tuple[dict[str, dict[str, Any]], int]:
    """Every stored result by model name, and the pending label count."""
    rows = session.execute(
        select(Model.name, PerformanceResultRow.result).join(
            PerformanceResultRow, PerformanceResultRow.model_id == Model.id
        )
    )
    results: dict[str, dict[str, Any]] = {}
    for name, result in rows.all():
        results[name] = result
    return results, pending_labels(session)


def stored_result(session: Session, model: Model) -> dict[str, Any] | None:
    """The stored result of one model."""
    row = session.get(PerformanceResultRow, model.id)
    return None if row is None else row.result


BUDGET_SHARE = 0.5
"""Share of the job's interval one run may spend; the models left wait for the next run."""


def compute_all(state: MonitorState, latest: LatestResults) -> None:
    """The periodic job: every model's windowed performance, stored and cached.

    Bounded: a run computes the least recently computed models first and stops once it has spent
    ``BUDGET_SHARE`` of the interval, so its cost never grows past the interval with the number
    of models; the rest go first next run (``driftloop_performance_computed_timestamp_seconds``
    shows each model's age). Each model is computed in a read transaction and stored in a short
    write one, so ingest is not held behind the computation (SQLite's write lock).
    """
    settings = state.settings.feedback
    options = Options.from_settings(settings)
    now = state.clock.now()
    budget = BUDGET_SHARE * state.settings.jobs.interval_seconds
    with state.sessions() as session:
        models = list(session.scalars(select(Model).order_by(Model.name)))
        computed = dict(
            session.execute(
                select(PerformanceResultRow.model_id, PerformanceResultRow.computed_at)
            ).all()
        )
    models.sort(key=lambda m: (m.id in computed, computed.get(m.id) or now))
    started = time.monotonic()
    for position, model in enumerate(models):
        if position and time.monotonic() - started > budget:
            log.warning(
                "performance job: %d of %d models wait for the next run (this run used its "
                "budget of %.0f s); raise DRIFTLOOP_JOBS__INTERVAL_SECONDS if results age",
                len(models) - position,
                len(models),
                budget,
            )
            break
        try:
            with state.sessions() as session:
                result = windowed(session, model, now, settings.windows_seconds, options)
            with state.sessions.begin() as session:
                row = session.get(PerformanceResultRow, model.id)
                if row is None:
                    session.add(
                        PerformanceResultRow(model_id=model.id, result=result, computed_at=now)
                    )
                else:
                    row.result, row.computed_at = result, now
        except Exception:  # one model's bad data must not stop the others
            log.exception("performance of model %s failed", model.name)
    with state.sessions() as session:
        latest.put(*load(session))
