"""Gather the evidence of one rollout evaluation from the store.

The primary metric comes from labeled rows (``driftloop.feedback.labeled_rows``): correctness for
classification, minus the squared (or absolute) error for regression, so that a positive
difference always means "the challenger is better". Shadow steps pair the champion's and the
shadow copy's rows of the same request id; canary and A/B steps compare the two variants' rows
since the canary phase began. Guardrails (5xx share, p99 latency) and the split check read the raw
records, labeled or not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from driftloop.contract import ModelSchema, PredictionKind
from driftloop.monitor.rollout.checks import error_guardrail, finite, latency_guardrail, split_check
from driftloop.monitor.rollout.decide import Evidence, Step, phase_alpha
from driftloop.monitor.rollout.sequences import (
    Moments,
    paired_sequence,
    unpaired_sequence,
)
from driftloop.settings import RolloutSettings
from driftloop.store import Model, Rollout

__all__ = ["Assessment", "LabeledRows", "assess", "row_values"]

LabeledRows = Callable[..., pd.DataFrame]
"""``labeled_rows(session, model, *, since=None, until=None, variant=None)`` (feedback)."""


@dataclass(frozen=True)
class Assessment:
    """The decision inputs (:class:`Evidence`) and their JSON record, stored with decisions."""

    evidence: Evidence
    record: dict[str, Any]
    progress: dict[str, Any]


def _same(prediction: Any, label: Any) -> bool:
    if prediction is None:
        return False
    if isinstance(prediction, int | float) and isinstance(label, int | float):
        return float(prediction) == float(label)
    return str(prediction) == str(label)


def row_values(frame: pd.DataFrame, kind: PredictionKind, loss: str) -> np.ndarray:
    """Per-row value of the primary metric, higher is better (NaN when it cannot be scored)."""
    if frame.empty:
        return np.zeros(0)
    if kind is PredictionKind.classification:
        return np.array(
            [float(_same(p, y)) for p, y in zip(frame["prediction"], frame["label"], strict=True)]
        )
    prediction = pd.to_numeric(frame["prediction"], errors="coerce").to_numpy(dtype=float)
    label = pd.to_numeric(frame["label"], errors="coerce").to_numpy(dtype=float)
    error = prediction - label
    return -(error**2) if loss == "squared" else -np.abs(error)


def _pair_values(pairs: pd.DataFrame, suffix: str, kind: PredictionKind, loss: str) -> np.ndarray:
    if pairs.empty:
        return np.zeros(0)
    view = pd.DataFrame({"prediction": pairs["prediction" + suffix], "label": pairs["label_a"]})
    return row_values(view, kind, loss)


def _arm(frame: pd.DataFrame, variant: str, version: str) -> pd.DataFrame:
    ok = (frame["variant"] == variant) & (frame["version"] == version) & (frame["status"] < 400)
    return frame.loc[ok]


def _clean(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def _plain(value: Any) -> Any:
    """JSON-safe copy: NumPy scalars become Python ones, non-finite floats ``None``."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        return float(value) if np.isfinite(value) else None
    return value


def assess(
    session: Session,
    model: Model,
    rollout: Rollout,
    step: Step,
    config: RolloutSettings,
    now: datetime,
    labeled_rows: LabeledRows,
) -> Assessment:
    """Evaluate the rollout's current step: intervals, guardrails, split check."""
    schema = ModelSchema.model_validate(model.schema)
    kind = schema.prediction.kind
    alpha = phase_alpha(config)
    common = {"tuning_samples": config.tuning_samples, "min_samples": config.min_compare_samples}
    bounded = 1.0 if kind is PredictionKind.classification else None
    since = rollout.phase_started_at
    challenger_variant = "shadow" if step.paired else "challenger"
    champ_v, chall_v = rollout.champion_version, rollout.challenger_version

    frame = labeled_rows(session, model, since=since)
    a = _arm(frame, "champion", champ_v) if len(frame) else frame
    b = _arm(frame, challenger_variant, chall_v) if len(frame) else frame
    if step.paired:
        pairs = a.merge(b, on="request_id", suffixes=("_a", "_b")) if len(frame) else pd.DataFrame()
        va = _pair_values(pairs, "_a", kind, config.regression_loss)
        vb = _pair_values(pairs, "_b", kind, config.regression_loss)
        diff = _clean(vb - va)
        interval = paired_sequence(Moments.of(diff), alpha=alpha, max_variance=bounded, **common)
        n_a = n_b = int(diff.size)
        means = (float(np.mean(va)) if va.size else None, float(np.mean(vb)) if vb.size else None)
        step_rows = int((pairs["ts_b"] >= rollout.step_started_at).sum()) if len(pairs) else 0
    else:
        va = _clean(row_values(a, kind, config.regression_loss))
        vb = _clean(row_values(b, kind, config.regression_loss))
        interval = unpaired_sequence(
            Moments.of(va),
            Moments.of(vb),
            alpha=alpha,
            max_variance=None if bounded is None else 0.25,
            **common,
        )
        n_a, n_b = int(va.size), int(vb.size)
        means = (float(va.mean()) if va.size else None, float(vb.mean()) if vb.size else None)
        step_rows = int((b["ts"] >= rollout.step_started_at).sum()) if len(b) else 0

    progress = dict(rollout.progress or {})
    stored_lower, stored_upper = progress.get("lower"), progress.get("upper")
    lower = max(-np.inf if stored_lower is None else float(stored_lower), float(interval.lower))
    upper = min(np.inf if stored_upper is None else float(stored_upper), float(interval.upper))
    earlier = int(progress.get("earlier_samples", 0))
    progress.update({"lower": finite(lower), "upper": finite(upper)})

    errors = error_guardrail(session, model, rollout, challenger_variant, since, config)
    latency = latency_guardrail(session, model, rollout, challenger_variant, since, config)
    srm = split_check(session, model, rollout, step, now, config, progress)

    evidence = Evidence(
        lower=lower,
        upper=upper,
        n_champion=earlier + n_a,
        n_challenger=earlier + n_b,
        step_samples=step_rows,
        step_seconds=(now - rollout.step_started_at).total_seconds(),
        error_lower=errors.pop("_lower"),
        latency_lower=latency.pop("_lower"),
        srm_log_e=srm.pop("_log_e"),
    )
    metric = (
        "accuracy"
        if kind is PredictionKind.classification
        else f"negative_{config.regression_loss}_error"
    )
    record = {
        "evaluated_at": now.isoformat(),
        "mode": step.mode,
        "weight": step.weight,
        "metric": metric,
        "comparison": "paired" if step.paired else "unpaired",
        "margin": config.margin,
        "alpha": alpha,
        "difference": {
            **interval.as_dict(),
            "running_lower": finite(lower),
            "running_upper": finite(upper),
        },
        "metric_values": {"champion": means[0], "challenger": means[1]},
        "samples": {
            "champion": n_a,
            "challenger": n_b,
            "earlier_phases": earlier,
            "step": step_rows,
        },
        "step_seconds": evidence.step_seconds,
        "guardrails": {"error_rate": errors, "latency_p99": latency},
        "srm": srm,
    }
    return Assessment(evidence, _plain(record), _plain(progress))
