"""The data behind a model page's charts, read with a few bounded queries per page.

The time axis ends at the model's newest record (not at "now"), so a page shows the last hours
of traffic the model had, also for a model that stopped receiving traffic. Every query is capped
(rows and buckets) so a page costs the same for a model with ten records or ten million.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from driftloop.contract import ModelSchema, PredictionKind
from driftloop.store import DriftResult, LabelRow, Model, RecordRow, Rollout, RolloutDecision

__all__ = ["ModelSeries", "load_series"]

WINDOW = timedelta(hours=6)
MAX_RECORDS = 20_000
MAX_BUCKETS = 48
MAX_RESULTS = 48
Z95 = 1.959964


@dataclass
class ModelSeries:
    """Everything the charts draw, already bucketed."""

    buckets: list[datetime] = field(default_factory=list)
    bucket_minutes: int = 1
    traffic: dict[str, dict[datetime, int]] = field(default_factory=dict)
    errors: dict[str, dict[datetime, int]] = field(default_factory=dict)
    labeled: dict[str, dict[datetime, int]] = field(default_factory=dict)
    performance: dict[str, list[tuple[datetime, float, float, float]]] = field(default_factory=dict)
    metric: str = "accuracy"
    drift_features: list[str] = field(default_factory=list)
    drift_times: list[datetime] = field(default_factory=list)
    drift_cells: dict[tuple[str, datetime], tuple[float | None, bool]] = field(default_factory=dict)
    drift_of: str = ""
    rollout: dict[str, Any] | None = None
    sampled: bool = False


def _aware(ts: datetime) -> datetime:
    from datetime import UTC

    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _bucket_size(span: timedelta) -> int:
    minutes = max(1, math.ceil(span.total_seconds() / 60 / MAX_BUCKETS))
    for size in (1, 2, 5, 10, 15, 30, 60):
        if minutes <= size:
            return size
    return 60


def _floor(ts: datetime, minutes: int) -> datetime:
    ts = _aware(ts).replace(second=0, microsecond=0)
    return ts - timedelta(minutes=(ts.hour * 60 + ts.minute) % minutes)


def _same(prediction: Any, label: Any) -> bool:
    if isinstance(prediction, bool) or isinstance(label, bool):
        return bool(prediction) == bool(label) and type(prediction) is type(label)
    try:
        return float(prediction) == float(label)
    except (TypeError, ValueError):
        return str(prediction) == str(label)


def _wilson(hits: int, n: int) -> tuple[float, float, float]:
    p = hits / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return p, max(0.0, centre - half), min(1.0, centre + half)


def _mean_interval(values: list[float]) -> tuple[float, float, float]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, mean, mean
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = Z95 * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def _records(session: Session, model: Model, series: ModelSeries) -> None:
    end = session.scalar(select(func.max(RecordRow.ts)).where(RecordRow.model_id == model.id))
    if end is None:
        return
    end = _aware(end)
    start = end - WINDOW
    first = session.scalar(
        select(func.min(RecordRow.ts)).where(RecordRow.model_id == model.id, RecordRow.ts >= start)
    )
    span = end - _aware(first) if first is not None else WINDOW
    size = series.bucket_minutes = _bucket_size(max(span, timedelta(minutes=5)))
    rows = session.execute(
        select(RecordRow.ts, RecordRow.variant, RecordRow.status, RecordRow.outputs, LabelRow.label)
        .outerjoin(
            LabelRow,
            and_(
                LabelRow.model_id == RecordRow.model_id, LabelRow.request_id == RecordRow.request_id
            ),
        )
        .where(RecordRow.model_id == model.id, RecordRow.ts >= start)
        .order_by(RecordRow.ts.desc())
        .limit(MAX_RECORDS)
    ).all()
    series.sampled = len(rows) >= MAX_RECORDS
    schema = ModelSchema.model_validate(model.schema)
    regression = schema.prediction.kind is PredictionKind.regression
    series.metric = "mean absolute error" if regression else "accuracy"
    hits: dict[str, dict[datetime, list[float]]] = defaultdict(lambda: defaultdict(list))
    for ts, variant, status, outputs, label in rows:
        bucket = _floor(ts, size)
        series.traffic.setdefault(variant, {}).setdefault(bucket, 0)
        series.traffic[variant][bucket] += 1
        if status is not None and status >= 400:
            series.errors.setdefault(variant, {}).setdefault(bucket, 0)
            series.errors[variant][bucket] += 1
        if label is None:
            continue
        series.labeled.setdefault(variant, {}).setdefault(bucket, 0)
        series.labeled[variant][bucket] += 1
        prediction = (outputs or {}).get("prediction") if isinstance(outputs, dict) else None
        if prediction is None:
            continue
        if regression:
            try:
                hits[variant][bucket].append(abs(float(prediction) - float(label)))
            except (TypeError, ValueError):
                continue
        else:
            hits[variant][bucket].append(1.0 if _same(prediction, label) else 0.0)
    all_buckets = {b for counts in series.traffic.values() for b in counts}
    if all_buckets:
        lo, hi = min(all_buckets), max(all_buckets)
        series.buckets = [lo + timedelta(minutes=size * i) for i in range(
            int((hi - lo).total_seconds() // (60 * size)) + 1)]  # fmt: skip
    for variant, by_bucket in hits.items():
        points = []
        for bucket in sorted(by_bucket):
            values = by_bucket[bucket]
            if not values:
                continue
            if regression:
                points.append((bucket, *_mean_interval(values)))
            else:
                points.append((bucket, *_wilson(int(sum(values)), len(values))))
        series.performance[variant] = points


def _drift(session: Session, model: Model, series: ModelSeries) -> None:
    results = session.scalars(
        select(DriftResult)
        .where(DriftResult.model_id == model.id)
        .order_by(DriftResult.id.desc())
        .limit(MAX_RESULTS * 3)
    ).all()
    if not results:
        return
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for r in results:
        counts[(r.version, r.variant)] += 1
    champion = [k for k in counts if k[1] == "champion"]
    version, variant = max(champion or counts, key=lambda k: counts[k])
    series.drift_of = f"{version} · {variant}"
    chosen = [r for r in results if (r.version, r.variant) == (version, variant)][:MAX_RESULTS]
    names: dict[str, None] = {}
    for r in reversed(chosen):
        at = _aware(r.computed_at)
        series.drift_times.append(at)
        for feature in (r.result.get("reference") or {}).get("features") or []:
            name = str(feature.get("name"))
            names.setdefault(name, None)
            p = feature.get("p_adjusted")
            series.drift_cells[(name, at)] = (
                float(p) if isinstance(p, int | float) else None,
                bool(feature.get("drifted")),
            )
    series.drift_features = list(names)


def _rollout(session: Session, model: Model, series: ModelSeries) -> None:
    rollout = session.scalar(
        select(Rollout).where(Rollout.model_id == model.id).order_by(Rollout.id.desc()).limit(1)
    )
    if rollout is None:
        return
    decisions = session.scalars(
        select(RolloutDecision)
        .where(RolloutDecision.rollout_id == rollout.id)
        .order_by(RolloutDecision.id)
        .limit(500)
    ).all()
    points: dict[datetime, tuple[float, float, float]] = {}
    margin = (rollout.config or {}).get("margin")
    evidences = [d.evidence for d in decisions if d.evidence] + (
        [rollout.evidence] if rollout.evidence else []
    )
    for evidence in evidences:
        diff = evidence.get("difference") or {}
        at = evidence.get("evaluated_at")
        lower = diff.get("running_lower", diff.get("lower"))
        upper = diff.get("running_upper", diff.get("upper"))
        estimate = diff.get("estimate")
        margin = evidence.get("margin", margin)
        if at and all(isinstance(v, int | float) for v in (lower, upper, estimate)):
            points[_aware(datetime.fromisoformat(at))] = (
                float(estimate),  # type: ignore[arg-type]
                float(lower),  # type: ignore[arg-type]
                float(upper),  # type: ignore[arg-type]
            )
    series.rollout = {
        "champion": rollout.champion_version,
        "challenger": rollout.challenger_version,
        "status": rollout.status,
        "margin": margin,
        "points": sorted((t, *v) for t, v in points.items()),
        "decisions": [(_aware(d.decided_at), d.decision, d.reason, d.actor) for d in decisions],
    }


def load_series(session: Session, model: Model) -> ModelSeries:
    """The page's series for ``model`` (a handful of capped queries)."""
    series = ModelSeries()
    _records(session, model, series)
    _drift(session, model, series)
    _rollout(session, model, series)
    return series
