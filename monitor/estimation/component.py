"""Plugs performance estimation into the monitor: ``performance.estimated`` in
``GET /v1/models/{name}`` and the ``driftloop_performance_estimated`` /
``driftloop_performance_estimate_error`` series.

Per model, the estimator is fitted once per reference dataset (cached by the reference's id):
CBPE on the reference's ``score:<class>`` columns and labels for a classifier, DLE on its
features, predictions and labels for a regressor. Per version and variant, the newest records of
the recent window (``estimation.window_seconds``, at most ``estimation.max_rows``) are estimated
all together; where some carry labels, the estimate on those rows stands beside their realized
value (the reconciliation), and the metrics realized on the reference stand beside both (the
baseline of an estimated degradation). Results are reused for ``estimation.ttl_seconds``, so a
page and a scrape do not refit or re-read anything. A model that cannot be estimated says why
(``reason``).

The rows come from feedback's ``window_rows`` (every record, labeled or not), handed in by the
composition root: the monitor does not import feedback. The other way round, the composition root
hands :func:`estimated_performance` to feedback's retraining conditions.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from fastapi import FastAPI
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from driftloop.contract import ModelSchema, PredictionKind
from driftloop.monitor.estimation.cbpe import ClassificationEstimator
from driftloop.monitor.estimation.dle import RegressionEstimator
from driftloop.monitor.estimation.result import SCORE_PREFIX, Estimation, NotEstimableError
from driftloop.scores import score_matrix
from driftloop.store import Model, ReferenceDataset
from driftloop.store.reference import reference_ids

if TYPE_CHECKING:
    from driftloop.web.state import MonitorState

__all__ = [
    "SECTION",
    "EstimationCollector",
    "Estimations",
    "WindowRows",
    "estimated_performance",
    "install",
]

log = logging.getLogger(__name__)

SECTION = "performance.estimated"
"""Where the section goes in ``GET /v1/models/{name}``: key ``estimated`` of ``performance``."""

WindowRows = Callable[..., pd.DataFrame]
"""``window_rows(session, model, *, since, until, limit)`` (feedback): every record of the
window, with ``label`` where one arrived, ``prediction``, the features and ``scores``."""

FITTED_REFERENCES = 64
"""Fitted estimators kept (one per reference dataset)."""

MAX_REFERENCE_ROWS = 20_000
"""Reference rows an estimator is fitted on at most (a fixed sample of a larger reference)."""


@dataclass(frozen=True)
class _Fitted:
    """An estimator fitted on one reference, or why none could be."""

    task: str
    estimator: ClassificationEstimator | RegressionEstimator | None = None
    classes: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    reason: str | None = None
    reference: dict[str, float] | None = None
    """The metrics realized on the reference itself (its predictions against its labels)."""


def _fit(reference: ReferenceDataset, schema: ModelSchema) -> _Fitted:
    names = [str(n) for n in (reference.columns or {}).get("names", [])]
    label = schema.label_column
    if schema.prediction.kind is PredictionKind.classification:
        scores = [n for n in names if n.startswith(SCORE_PREFIX)]
        if not scores:
            return _Fitted(
                "classification",
                reason="the reference has no class scores: upload it with score_columns "
                "(one per class, in the order of the sorted class labels)",
            )
        if label is None or label not in names:
            return _Fitted("classification", reason="the reference has no label column")
        predicted = schema.prediction.field if schema.prediction.field in names else None
        columns = [*scores, label, *([predicted] if predicted else [])]
        frame = _read(reference, columns).dropna(subset=[*scores, label])
        classes = [n[len(SCORE_PREFIX) :] for n in scores]
        matrix = frame[scores].to_numpy(np.float64)
        truth = [str(v) for v in frame[label]]
        try:
            estimator = ClassificationEstimator.fit(matrix, truth, classes=classes)
        except NotEstimableError as exc:
            return _Fitted("classification", reason=str(exc))
        # The reference's own predictions, else the class of the highest score.
        if predicted is not None and frame[predicted].notna().all():
            predictions = [str(v) for v in frame[predicted]]
        else:
            predictions = [classes[i] for i in matrix.argmax(axis=1)]
        baseline = _realized(lambda: estimator.estimate(matrix, predictions, labels=truth))
        return _Fitted("classification", estimator, classes=tuple(classes), reference=baseline)
    field = schema.prediction.field
    features = [f.name for f in schema.features if f.name in names]
    if label is None or label not in names:
        return _Fitted("regression", reason="the reference has no label column")
    if field not in names:
        return _Fitted(
            "regression",
            reason="the reference has no predictions: upload it with prediction_column",
        )
    frame = _read(reference, [*features, field, label])
    predictions = pd.to_numeric(frame[field], errors="coerce").to_numpy(np.float64)
    truth = pd.to_numeric(frame[label], errors="coerce").to_numpy(np.float64)
    try:
        fitted = RegressionEstimator.fit(frame[features], predictions, truth)
    except NotEstimableError as exc:
        return _Fitted("regression", reason=str(exc))
    keep = np.isfinite(predictions) & np.isfinite(truth)
    baseline = _realized(
        lambda: fitted.estimate(frame[features][keep], predictions[keep], labels=truth[keep])
    )
    return _Fitted("regression", fitted, features=tuple(features), reference=baseline)


def _realized(estimate: Callable[[], Estimation]) -> dict[str, float] | None:
    """The realized metrics of an estimation on the reference, None when it cannot be had (the
    estimates still can: the baseline only feeds the estimated-degradation condition)."""
    try:
        realized = estimate().realized
    except NotEstimableError:
        return None
    return {name: float(v) for name, v in realized.items() if np.isfinite(v)} or None


def _read(reference: ReferenceDataset, columns: list[str]) -> pd.DataFrame:
    unique = list(dict.fromkeys(columns))
    frame = pq.read_table(io.BytesIO(reference.content), columns=unique).to_pandas()
    if len(frame) > MAX_REFERENCE_ROWS:
        frame = frame.sample(MAX_REFERENCE_ROWS, random_state=0)
    return frame.reset_index(drop=True)


def _labels(rows: pd.DataFrame) -> pd.Series:
    return rows["label"] if "label" in rows.columns else pd.Series([None] * len(rows))


def _classification(fitted: _Fitted, rows: pd.DataFrame, scores_field: str) -> dict[str, Any]:
    assert isinstance(fitted.estimator, ClassificationEstimator)
    matrix = score_matrix(rows, fitted.classes)
    if matrix is None:
        raise NotEstimableError(f"the records carry no class scores under outputs.{scores_field}")
    complete = np.isfinite(matrix).all(axis=1)
    if not complete.any():
        raise NotEstimableError(
            f"the records carry no complete class scores under outputs.{scores_field} "
            f"(classes {list(fitted.classes)})"
        )
    rows = rows[complete]
    matrix = matrix[complete]
    predictions = [str(p) for p in rows["prediction"]]
    labels = _labels(rows)
    labeled = labels.notna().to_numpy()
    everything = fitted.estimator.estimate(matrix, predictions)
    reconciled = None
    if labeled.any():
        reconciled = fitted.estimator.estimate(
            matrix[labeled],
            [p for p, keep in zip(predictions, labeled, strict=True) if keep],
            labels=[str(v) for v in labels[labeled]],
        )
    return _entry(everything, reconciled, int((~complete).sum()))


def _regression(fitted: _Fitted, rows: pd.DataFrame) -> dict[str, Any]:
    assert isinstance(fitted.estimator, RegressionEstimator)
    features = pd.DataFrame(
        {
            name: rows[name] if name in rows.columns else rows.get(f"input.{name}")
            for name in fitted.features
        },
        index=rows.index,
    )
    predictions = pd.to_numeric(rows["prediction"], errors="coerce").to_numpy(np.float64)
    labels = pd.to_numeric(_labels(rows), errors="coerce").to_numpy(np.float64)
    everything = fitted.estimator.estimate(features, predictions)
    labeled = np.isfinite(labels) & np.isfinite(predictions)
    reconciled = None
    if labeled.any():
        reconciled = fitted.estimator.estimate(
            features[labeled], predictions[labeled], labels=labels[labeled]
        )
    return _entry(everything, reconciled, int((~np.isfinite(predictions)).sum()))


def _entry(everything: Estimation, reconciled: Estimation | None, skipped: int) -> dict[str, Any]:
    body = everything.as_json()
    body["skipped_rows"] = skipped
    body["reconciliation"] = None if reconciled is None else reconciled.as_json()
    return body


class Estimations:
    """The estimation of every model, computed on demand and reused for a while."""

    def __init__(self, state: MonitorState, rows: WindowRows) -> None:
        self.state = state
        self.rows = rows
        self.settings = state.settings.estimation
        self._lock = threading.Lock()
        self._fitted: OrderedDict[tuple[int, str], _Fitted] = OrderedDict()
        self._results: dict[int, tuple[float, dict[str, Any]]] = {}

    def section(self, session: Session, model: Model) -> dict[str, Any]:
        """The model's ``performance.estimated`` section (cached ``ttl_seconds``)."""
        with self._lock:
            cached = self._results.get(model.id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            body = self._compute(session, model)
        except SQLAlchemyError:
            raise  # the store is unavailable: the caller answers 503
        except Exception as exc:  # a broken estimate must not break the model's page
            log.exception("the estimation of %s failed", model.name)
            body = {"reason": f"the estimation failed: {type(exc).__name__}: {exc}", "groups": []}
        with self._lock:
            self._results[model.id] = (time.monotonic() + self.settings.ttl_seconds, body)
        return body

    def _fitted_for(self, session: Session, reference_id: int, schema: ModelSchema) -> _Fitted:
        # The schema's task and label column are part of the key: a new schema refits.
        key = (reference_id, f"{schema.prediction.kind}:{schema.label_column}")
        with self._lock:
            found = self._fitted.get(key)
            if found is not None:
                self._fitted.move_to_end(key)
                return found
        reference = session.get(ReferenceDataset, reference_id)
        task = schema.prediction.kind.value
        if reference is None:
            fitted = _Fitted(task, reason="the reference dataset was deleted")
        else:
            try:
                fitted = _fit(reference, schema)
            except SQLAlchemyError:
                raise
            except Exception as exc:  # data the estimator cannot fit: said once, kept
                log.exception("no estimator could be fitted on reference %s", reference_id)
                fitted = _Fitted(task, reason=f"the reference cannot be fitted: {exc}")
        with self._lock:
            self._fitted[key] = fitted
            while len(self._fitted) > FITTED_REFERENCES:
                self._fitted.popitem(last=False)
        return fitted

    def _compute(self, session: Session, model: Model) -> dict[str, Any]:
        now = self.state.clock.now()
        since = now - timedelta(seconds=self.settings.window_seconds)
        body: dict[str, Any] = {
            "window_seconds": self.settings.window_seconds,
            "since": since.isoformat(),
            "until": now.isoformat(),
            "reason": None,
            "groups": [],
        }
        if not model.schema:
            body["reason"] = "the model has no schema"
            return body
        schema = ModelSchema.model_validate(model.schema)
        own, default = reference_ids(session, model)
        if default is None:
            body["reason"] = "no reference dataset: upload one with labels"
            return body
        fitted = {ref: self._fitted_for(session, ref, schema) for ref in {default, *own.values()}}
        if all(f.estimator is None for f in fitted.values()):
            # Cheap: decided from the references alone, no record is read.
            body["reason"] = fitted[default].reason
            return body
        rows = self.rows(session, model, since=since, until=now, limit=self.settings.max_rows)
        body["rows"] = len(rows)
        body["truncated"] = len(rows) >= self.settings.max_rows
        if rows.empty:
            return body
        for (version, variant), group in rows.groupby(["version", "variant"], sort=True):
            fit = fitted[own.get(str(version), default)]
            entry: dict[str, Any] = {"version": version, "variant": variant, "rows": len(group)}
            entry["reference"] = fit.reference
            if fit.estimator is None:
                entry["reason"] = fit.reason
            else:
                try:
                    if fit.task == "classification":
                        entry.update(_classification(fit, group, schema.prediction.scores_field))
                    else:
                        entry.update(_regression(fit, group))
                except NotEstimableError as exc:
                    entry["reason"] = str(exc)
            body["groups"].append(entry)
        reasons = {g.get("reason") for g in body["groups"]}
        if None not in reasons and len(reasons) == 1:
            body["reason"] = reasons.pop()  # no group could be estimated, for one reason
        return body


class EstimationCollector(Collector):
    """``driftloop_performance_estimated`` and ``driftloop_performance_estimate_error`` of every
    model, from :class:`Estimations` (reused for ``ttl_seconds``)."""

    def __init__(self, state: MonitorState, estimations: Estimations) -> None:
        self.state = state
        self.estimations = estimations

    def describe(self) -> list[Metric]:
        """No static description: the families depend on the store."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Yield the estimates, their bounds and the estimation errors."""
        labels = ["model", "version", "variant", "metric"]
        estimated = GaugeMetricFamily(
            "driftloop_performance_estimated",
            "Performance estimated without labels over the recent window, with its interval "
            "(bound: estimate, lower, upper).",
            labels=[*labels, "bound"],
        )
        error = GaugeMetricFamily(
            "driftloop_performance_estimate_error",
            "Estimate minus realized value on the window's labeled rows (reconciliation).",
            labels=labels,
        )
        try:
            with self.state.sessions() as session:
                for model in session.scalars(select(Model).order_by(Model.name)):
                    try:
                        body = self.estimations.section(session, model)
                    except Exception:  # one model's failure must not empty the scrape
                        log.exception("the estimation of %s failed", model.name)
                        continue
                    for group in body.get("groups", []):
                        key = [model.name, str(group["version"]), str(group["variant"])]
                        for metric, value in group.get("metrics", {}).items():
                            for bound in ("estimate", "lower", "upper"):
                                if value[bound] is not None:
                                    estimated.add_metric([*key, metric, bound], value[bound])
                        reconciled = group.get("reconciliation") or {}
                        for metric, value in reconciled.get("error", {}).items():
                            error.add_metric([*key, metric], value)
        except SQLAlchemyError:
            log.warning("performance estimates not exported: the store is unavailable")
        yield estimated
        yield error


def estimated_performance(state: MonitorState, session: Session, model: Model) -> Any:
    """The model's ``performance.estimated`` section (cached like the page's), or None when the
    estimation is off. Handed to feedback's retraining conditions by the composition root."""
    section = state.model_sections.get(SECTION)
    return None if section is None else section(session, model)


def install(app: FastAPI, state: MonitorState, *, rows: WindowRows) -> None:
    """Add ``performance.estimated`` to the model's view and the collector (unless
    ``estimation.enabled`` is false); ``rows`` is feedback's ``window_rows``."""
    del app  # no routes: the section and the series are the surface
    if not state.settings.estimation.enabled:
        return
    estimations = Estimations(state, rows)
    state.model_sections[SECTION] = estimations.section
    state.registry.register(EstimationCollector(state, estimations))
