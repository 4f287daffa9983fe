"""The periodic evaluation: drift, prediction drift and quality of every model's recent window.

For each model with a usable reference, the window ``[end - W, end)`` (``end`` is the start of the
next minute, ``W`` the model's ``window_minutes``) is summed from profiles per version and variant
and compared with the reference and with the window before it. One result row per version and
variant is stored; results and flagged records older than the retention are deleted.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from driftloop.monitor.drift.budget import alarm_alpha, raised
from driftloop.monitor.drift.decision import DriftConfig, DriftReport
from driftloop.monitor.profiles.baselines import BaselineCache
from driftloop.monitor.profiles.build import ModelBaseline
from driftloop.monitor.profiles.store import bucket_start, read_window
from driftloop.monitor.profiles.window import profile_drift
from driftloop.monitor.quality.shares import profile_quality
from driftloop.settings import DriftSettings
from driftloop.store import DriftProfile, DriftResult, Model, OodRecord

if TYPE_CHECKING:
    from driftloop.web.state import MonitorState

__all__ = [
    "MINUTE_BUCKETS_KEPT",
    "RESULTS_KEPT",
    "Evaluator",
    "evaluate_window",
    "previous_bounds",
    "window_bounds",
]

log = logging.getLogger(__name__)


MINUTE_BUCKETS_KEPT = timedelta(hours=50)
"""Minute buckets older than this are deleted; hour and day buckets follow the retention."""
RESULTS_KEPT = timedelta(days=1)
"""Stored results older than this are deleted (the newest per version and variant stays)."""


def _ceil_hour(ts: datetime) -> datetime:
    floor = bucket_start(ts, "hour")
    return floor if floor == ts else floor + timedelta(hours=1)


def window_bounds(now: datetime, minutes: int) -> tuple[datetime, datetime]:
    """``[start, end)`` of the window ending with the current minute.

    Windows longer than a day start on a whole hour, so that they and the window before them
    never need minute buckets older than :data:`MINUTE_BUCKETS_KEPT`.
    """
    end = bucket_start(now, "minute") + timedelta(minutes=1)
    start = end - timedelta(minutes=minutes)
    if minutes > 24 * 60:
        start = _ceil_hour(start)
    return start, end


def previous_bounds(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The window of the same length just before ``[start, end)`` (hour-aligned when long)."""
    begin = start - (end - start)
    if end - start > timedelta(days=1):
        begin = _ceil_hour(begin)
    return begin, start


def _report(report: DriftReport) -> dict[str, Any]:
    return {
        "dataset_drift": report.dataset_drift,
        "drifted_share": report.drifted_share,
        "alarm_share": report.alarm_share,
        "features": [f.as_dict() for f in report.features],
    }


def _last_verdicts(session: Session, model: Model) -> dict[tuple[str, str], bool]:
    """The dataset verdict of each version and variant's newest stored result."""
    newest = (
        select(func.max(DriftResult.id))
        .where(DriftResult.model_id == model.id)
        .group_by(DriftResult.version, DriftResult.variant)
        .scalar_subquery()
    )
    rows = session.execute(
        select(DriftResult.version, DriftResult.variant, DriftResult.dataset_drift).where(
            DriftResult.id.in_(newest)
        )
    )
    return {(version, variant): bool(flag) for version, variant, flag in rows}


def evaluate_window(
    baseline: ModelBaseline,
    current: NDArray[np.float64],
    previous: NDArray[np.float64] | None,
    config: DriftConfig,
) -> dict[str, Any]:
    """Drift against the reference and the previous window, prediction drift, and quality."""
    layout = baseline.layout
    against_reference = profile_drift(layout, current, config, overrides=baseline.overrides)
    out: dict[str, Any] = {
        "records": int(current[0]),
        "reference": _report(against_reference),
        "previous": None,
        "prediction": None,
        "quality": profile_quality(layout, current),
    }
    if previous is not None and previous[0] > 0:
        out["previous"] = _report(
            profile_drift(layout, current, config, baseline=previous, overrides=baseline.overrides)
        )
    if layout.prediction is not None:
        pred = {"reference": profile_drift(layout, current, config, role="prediction")}
        if previous is not None and previous[0] > 0:
            pred["previous"] = profile_drift(
                layout, current, config, baseline=previous, role="prediction"
            )
        out["prediction"] = {k: v.features[0].as_dict() for k, v in pred.items()}
    return out


class Evaluator:
    """The job ``fn(state)``: evaluate every model with a reference and store the results."""

    def __init__(self, baselines: BaselineCache) -> None:
        self.baselines = baselines

    def __call__(self, state: MonitorState) -> None:
        """Evaluate every model once."""
        with state.sessions.begin() as session:
            models = list(session.scalars(select(Model).order_by(Model.id)))
            for model in models:
                try:
                    with session.begin_nested():
                        self.evaluate_model(session, model, state.settings.drift, state.clock.now())
                except Exception:  # one model's failure must not starve the others
                    log.exception("drift evaluation of model %s failed", model.name)
            self.prune(session, state)

    def evaluate_model(
        self, session: Session, model: Model, defaults: DriftSettings, now: datetime
    ) -> list[DriftResult]:
        """Evaluate one model's window; store and return one result per version and variant.

        Each version is compared with its own reference when it brought one, else with the
        model's default (the champion's own reference, else the newest unversioned one).
        """
        from driftloop.store.reference import reference_ids

        own, default = reference_ids(session, model)
        if default is None:
            return []
        baselines = self.baselines.for_versions(session, model, [None, *own])
        settings = defaults.for_model(model.name)
        config = DriftConfig(
            settings.alpha,
            settings.materiality,
            settings.drifted_share,
            min_rows=settings.min_window_rows,
            alarm_alpha=alarm_alpha(
                settings.alpha, settings.window_minutes, settings.false_alarms_per_day
            ),
        )
        previously = _last_verdicts(session, model)
        start, end = window_bounds(now, settings.window_minutes)
        before, _ = previous_bounds(start, end)
        windows: list[tuple[str, str, ModelBaseline, NDArray[np.float64], Any]] = []
        done: set[int] = set()
        for baseline in baselines.values():
            if baseline is None or baseline.reference_id in done:
                continue
            done.add(baseline.reference_id)
            layout = baseline.layout
            current = {
                key: vector
                for key, vector in read_window(
                    session, model.id, layout.fingerprint, layout.size, start, end
                ).items()
                if own.get(key[0], default) == baseline.reference_id
            }
            previous = read_window(
                session, model.id, layout.fingerprint, layout.size, before, start, current
            )
            windows.extend(
                (version, variant, baseline, vector, previous.get((version, variant)))
                for (version, variant), vector in current.items()
            )
        rows = []
        for version, variant, baseline, vector, earlier in sorted(windows, key=lambda w: w[:2]):
            if vector[0] <= 0:
                continue
            result = evaluate_window(baseline, vector, earlier, config)
            result["reference_dataset"] = {
                "id": baseline.reference_id,
                "own": own.get(version) == baseline.reference_id,
            }
            against = result["reference"]
            # Hysteresis (see driftloop.monitor.drift.budget): raised at the alarm level, kept
            # while the share of features drifted at alpha still reaches the threshold.
            against["dataset_drift"] = raised(
                previously.get((version, variant), False),
                against["dataset_drift"],
                against["drifted_share"],
                config.drifted_share,
            )
            result.update(
                version=version,
                variant=variant,
                computed_at=now.isoformat(),
                window={
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "minutes": settings.window_minutes,
                },
                config={
                    "alpha": config.alpha,
                    "materiality": config.materiality,
                    "drifted_share": config.drifted_share,
                    "min_window_rows": config.min_rows,
                    "alarm_alpha": config.alarm_alpha,
                    "false_alarms_per_day": settings.false_alarms_per_day,
                },
            )
            row = DriftResult(
                model_id=model.id,
                version=version,
                variant=variant,
                computed_at=now,
                window_start=start,
                window_end=end,
                records=int(vector[0]),
                dataset_drift=bool(result["reference"]["dataset_drift"]),
                drifted_share=float(result["reference"]["drifted_share"]),
                result=result,
            )
            session.add(row)
            rows.append(row)
        session.flush()
        return rows

    def prune(self, session: Session, state: MonitorState) -> None:
        """Delete old results, buckets and flagged records (see the constants above)."""
        now = state.clock.now()
        cutoff = now - timedelta(days=state.settings.retention_days)
        newest = (
            select(func.max(DriftResult.id))
            .group_by(DriftResult.model_id, DriftResult.version, DriftResult.variant)
            .scalar_subquery()
        )
        session.execute(
            delete(DriftResult).where(
                DriftResult.computed_at < now - RESULTS_KEPT, DriftResult.id.not_in(newest)
            )
        )
        session.execute(
            delete(DriftProfile).where(
                DriftProfile.grain == "minute", DriftProfile.start < now - MINUTE_BUCKETS_KEPT
            )
        )
        session.execute(delete(DriftProfile).where(DriftProfile.start < cutoff))
        session.execute(delete(OodRecord).where(OodRecord.ts < cutoff))
