"""Live performance per model, version and variant: metrics with intervals, label coverage,
label latency and per-segment performance with the best-to-worst gap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from driftloop.contract import FeatureKind, ModelSchema, PredictionKind
from driftloop.feedback.classification import classification_metrics, score_metrics
from driftloop.feedback.intervals import Metric, difference_interval, normal_mean, wilson
from driftloop.feedback.join import feature_column, labeled_rows, prediction_counts
from driftloop.feedback.labels import Conformer
from driftloop.feedback.regression import regression_metrics
from driftloop.scores import score_matrix
from driftloop.settings import FeedbackSettings
from driftloop.store import Model

LATENCY_BUCKETS = (60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0, 259200.0, 604800.0, 2592000.0)
"""Upper bounds (seconds) of the label latency histogram: 1 min ... 30 days, then +Inf."""


@dataclass(frozen=True)
class Options:
    """How performance is computed (from :class:`~driftloop.settings.FeedbackSettings`)."""

    confidence: float = 0.95
    resamples: int = 1000
    min_segment_rows: int = 30
    max_segments: int = 20
    seed: int = 0

    @classmethod
    def from_settings(cls, settings: FeedbackSettings) -> Options:
        """Options matching the monitor's settings."""
        return cls(
            confidence=settings.confidence,
            resamples=settings.bootstrap_resamples,
            min_segment_rows=settings.min_segment_rows,
            max_segments=settings.max_segments,
        )


def primary_metric(schema: ModelSchema) -> str:
    """The metric rollouts and triggers watch: accuracy, or MAE for a regression."""
    return "mae" if schema.prediction.kind is PredictionKind.regression else "accuracy"


def performance(
    session: Session,
    model: Model,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    options: Options | None = None,
) -> dict[str, Any]:
    """Performance of ``model`` on records predicted in ``[since, until)``.

    Returns ``{"model", "kind", "primary_metric", "since", "until", "confidence", "versions":
    {version: {variant: group}}}`` where a group is ``{"n", "predictions", "label_coverage",
    "metrics": {name: metric}, "per_class", "segments", "label_latency_seconds",
    "invalid_labels"}`` and a metric is ``{"value", "lower", "upper", "n", "method", "reason"}``
    (``reason`` says why the bounds are None when a rule withholds them, else None).
    """
    schema = ModelSchema.model_validate(model.schema)
    frame = labeled_rows(session, model, since=since, until=until)
    counts = prediction_counts(session, model, since=since, until=until)
    strict = model.schema_source != "inferred"
    return evaluate(frame, counts, schema, model.name, options or Options(), since, until, strict)


def windowed(
    session: Session, model: Model, now: datetime, windows: list[int], options: Options
) -> dict[str, Any]:
    """Performance over each window ending ``now`` (one join for the longest window)."""
    schema = ModelSchema.model_validate(model.schema)
    longest = now - timedelta(seconds=max(windows))
    frame = labeled_rows(session, model, since=longest, until=now)
    out: dict[str, Any] = {"model": model.name, "computed_at": now.isoformat(), "windows": {}}
    for seconds in sorted(windows):
        since = now - timedelta(seconds=seconds)
        counts = prediction_counts(session, model, since=since, until=now)
        part = frame[frame["ts"] >= pd.Timestamp(since)] if len(frame) else frame
        out["windows"][window_name(seconds)] = evaluate(
            part, counts, schema, model.name, options, since, now, model.schema_source != "inferred"
        )
    return out


def window_name(seconds: int) -> str:
    """``3600`` -> ``1h``, ``86400`` -> ``1d``, ``90`` -> ``90s``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def evaluate(
    frame: pd.DataFrame,
    counts: dict[tuple[str, str], int],
    schema: ModelSchema,
    model_name: str,
    options: Options,
    since: datetime | None,
    until: datetime | None,
    strict: bool = True,
) -> dict[str, Any]:
    """Performance of already joined rows, grouped by version and variant; ``strict`` drops
    labels that are not a declared class (False for inferred schemas)."""
    versions: dict[str, dict[str, Any]] = {}
    keys = set(counts)
    if len(frame):
        keys |= set(frame.groupby(["version", "variant"]).groups)
    for version, variant in sorted(keys):
        part = (
            frame[(frame["version"] == version) & (frame["variant"] == variant)]
            if len(frame)
            else frame
        )
        versions.setdefault(version, {})[variant] = _group(
            part, counts.get((version, variant), len(part)), schema, options, strict
        )
    return {
        "model": model_name,
        "kind": schema.prediction.kind.value,
        "primary_metric": primary_metric(schema),
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "confidence": options.confidence,
        "versions": versions,
    }


def _conformed(values: pd.Series, schema: ModelSchema, strict: bool = True) -> pd.Series:
    """Values mapped to the model's label type; NaN where they do not fit."""
    mapping: dict[Any, Any] = {}
    conform = Conformer(schema, known_classes_only=strict)
    for value in pd.unique(values.dropna()):
        try:
            mapping[value] = conform(value.item() if hasattr(value, "item") else value)
        except ValueError:
            mapping[value] = None
    return values.map(mapping).astype(object).where(lambda s: s.notna(), None)


def _group(
    frame: pd.DataFrame, predictions: int, schema: ModelSchema, options: Options, strict: bool
) -> dict[str, Any]:
    labels = _conformed(frame["label"], schema, strict)
    valid = labels.notna().to_numpy()
    frame = frame[valid]
    labels = labels[valid]
    predicted = frame["prediction"]
    if schema.prediction.kind is PredictionKind.classification:
        predicted = _conformed(predicted, schema, strict).where(lambda s: s.notna(), predicted)
    y_true = labels.to_numpy(dtype=object)
    y_pred = predicted.to_numpy(dtype=object)
    rng = np.random.default_rng(options.seed)
    per_class: dict[str, Any] = {}
    if schema.prediction.kind is PredictionKind.regression:
        metrics = regression_metrics(
            y_true, y_pred, confidence=options.confidence, resamples=options.resamples, rng=rng
        )
    else:
        metrics, per_class = classification_metrics(
            y_true, y_pred, confidence=options.confidence, resamples=options.resamples, rng=rng
        )
        classes = schema.prediction.classes
        scores = score_matrix(frame, classes) if classes else None
        if classes and scores is not None:
            metrics.update(score_metrics(y_true, scores, classes, options.confidence))
    return {
        "n": len(frame),
        "predictions": predictions,
        "label_coverage": wilson(len(frame), max(predictions, len(frame)), options.confidence),
        "metrics": metrics,
        "per_class": per_class,
        "segments": _segments(frame, y_true, y_pred, schema, options),
        "label_latency_seconds": latency_histogram(frame),
        "invalid_labels": int((~valid).sum()),
    }


def latency_histogram(frame: pd.DataFrame) -> dict[str, Any]:
    """Time from prediction to label: cumulative bucket counts, sum, count and quantiles."""
    if not len(frame):
        return {"buckets": {str(b): 0 for b in LATENCY_BUCKETS}, "sum": 0.0, "count": 0}
    seconds = (frame["label_ts"] - frame["ts"]).dt.total_seconds().clip(lower=0).to_numpy()
    return {
        "buckets": {str(b): int((seconds <= b).sum()) for b in LATENCY_BUCKETS},
        "sum": float(seconds.sum()),
        "count": len(seconds),
        "p50": float(np.quantile(seconds, 0.5)),
        "p90": float(np.quantile(seconds, 0.9)),
    }


def _segment_keys(column: pd.Series, numerical: bool, options: Options) -> pd.Series:
    if numerical:
        values = pd.to_numeric(column, errors="coerce")
        bins = pd.qcut(values, 4, duplicates="drop")
        return bins.astype(str).where(values.notna(), "missing")
    keys = column.astype(object).where(column.notna(), "missing").astype(str)
    top = keys.value_counts().index[: options.max_segments - 1]
    return keys.where(keys.isin(top), "other")


def _per_row(y_true: Any, y_pred: Any, regression: bool) -> tuple[Any, Any]:
    """Each row's contribution to the primary metric (correct, or absolute error), and which
    rows have a prediction at all."""
    known = np.asarray(pd.notna(y_pred), dtype=bool)
    if regression:
        errors = np.full(len(y_true), np.nan)
        errors[known] = np.abs(y_pred[known].astype(np.float64) - y_true[known].astype(np.float64))
        return errors, known
    return np.equal(y_true, y_pred).astype(np.float64), known


def _segments(
    frame: pd.DataFrame,
    y_true: np.ndarray[Any, Any],
    y_pred: np.ndarray[Any, Any],
    schema: ModelSchema,
    options: Options,
) -> dict[str, Any]:
    regression = schema.prediction.kind is PredictionKind.regression
    name = primary_metric(schema)
    values, known = _per_row(y_true, y_pred, regression)
    out: dict[str, Any] = {}
    for feature in (f for f in schema.features if f.segment):
        column = feature_column(feature.name)
        if column not in frame.columns or not len(frame):
            continue
        keys = _segment_keys(frame[column], feature.kind is FeatureKind.numerical, options)
        codes, uniques = pd.factorize(keys.to_numpy())
        segments: dict[str, Metric] = {}
        parts: dict[str, np.ndarray[Any, Any]] = {}
        for code, key in sorted(enumerate(uniques), key=lambda item: str(item[1])):
            part = values[(codes == code) & known]
            parts[str(key)] = part
            segments[str(key)] = (
                normal_mean(part, options.confidence)
                if regression
                else wilson(float(part.sum()), len(part), options.confidence)
            )
        comparable = {
            k: m
            for k, m in segments.items()
            if m["n"] >= options.min_segment_rows and m["value"] is not None
        }
        gap = None
        if len(comparable) >= 2:
            ranked = sorted(
                comparable, key=lambda k: comparable[k]["value"], reverse=not regression
            )
            best, worst = ranked[0], ranked[-1]
            pairs = len(comparable) * (len(comparable) - 1) // 2
            lower, upper, method = difference_interval(
                comparable[best],
                comparable[worst],
                parts[best],
                parts[worst],
                not regression,
                options.confidence,
                pairs,
            )
            sign = 1.0 if not regression else -1.0  # the gap is best minus worst, made positive
            bounds = (
                (None, None)
                if lower is None or upper is None
                else tuple(sorted((sign * lower, sign * upper)))
            )
            gap = {
                "best": best,
                "worst": worst,
                "value": abs(comparable[best]["value"] - comparable[worst]["value"]),
                "lower": bounds[0],
                "upper": bounds[1],
                "method": method,
            }
        out[feature.name] = {"metric": name, "segments": segments, "gap": gap}
    return out
