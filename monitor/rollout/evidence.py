"""Gather the evidence of one rollout evaluation from the store.

The primary metric comes from labeled rows (``driftloop.feedback.labeled_rows``): correctness for
classification, minus the squared (or absolute) error for regression, so that a positive
difference always means "the challenger is better". Shadow steps pair the champion's and the
shadow copy's rows of the same request id; canary and A/B rows are compared within strata (one
step and one ``stratum_seconds`` bucket), and everything is combined into one sequence over the
whole rollout (:mod:`~driftloop.monitor.rollout.strata`). Rows younger than
``label_horizon_seconds`` wait: labels that come sooner for errors than for correct answers would
otherwise make the newest rows look worse. Guardrails (5xx share, latency) and the split check
read the raw records, labeled or not.

While labels are pending, the performance estimation (``performance.estimated``, from the
models' scores) gives an *estimated* difference, recorded as ``estimated_difference`` with
``estimated: true``: shown, never used to advance or promote; it rolls back early only when
``estimated_rollback`` is on (:mod:`~driftloop.monitor.rollout.decide`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.contract import ModelSchema, PredictionKind
from driftloop.jsonable import jsonable
from driftloop.monitor.rollout.checks import error_guardrail, finite, latency_guardrail, split_check
from driftloop.monitor.rollout.decide import Evidence, Step, phase_alpha
from driftloop.monitor.rollout.sequences import Moments
from driftloop.monitor.rollout.state import Progress
from driftloop.monitor.rollout.strata import stratified_sequence
from driftloop.monitor.rollout.units import clustered_moments
from driftloop.settings import RolloutSettings
from driftloop.store import Model, Rollout, RolloutDecision

__all__ = ["Assessment", "LabeledRows", "assess", "estimated_difference", "row_values"]

LabeledRows = Callable[..., pd.DataFrame]
"""``labeled_rows(session, model, *, since=None, until=None, variant=None)`` (feedback)."""


@dataclass(frozen=True)
class Assessment:
    """The decision inputs (:class:`Evidence`) and their JSON record, stored with decisions."""

    evidence: Evidence
    record: dict[str, Any]
    progress: Progress


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


def _utc(value: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _step_starts(session: Session, rollout: Rollout) -> list[pd.Timestamp]:
    """When each step after the first began (the rollout's advance decisions)."""
    rows = session.scalars(
        select(RolloutDecision.decided_at)
        .where(RolloutDecision.rollout_id == rollout.id, RolloutDecision.decision == "advance")
        .order_by(RolloutDecision.id)
    ).all()
    return [_utc(t) for t in rows]


def _unit_column(frame: pd.DataFrame, config: RolloutSettings) -> str | None:
    """The labeled rows' column holding the sticky key, when the key is a logged input field."""
    key = config.sticky_key or ""
    if not key.startswith("json:"):
        return None
    field = key[5:]
    for column in (field, "input." + field):
        if column in frame.columns:
            return column
    return None


def _units(frame: pd.DataFrame, column: str | None) -> np.ndarray:
    if column is None or frame.empty:
        return np.zeros(len(frame), dtype=object)
    return frame[column].astype(str).to_numpy()


def _distinct(frame: pd.DataFrame, column: str, since: pd.Timestamp) -> int:
    if frame.empty:
        return 0
    recent = (pd.to_datetime(frame["ts"], utc=True) >= since).to_numpy()
    return int(frame.loc[recent, column].nunique())


def _clustered_strata(
    values: np.ndarray, codes: np.ndarray, strata: int, units: np.ndarray | None
) -> Moments:
    """Per stratum, moments with the cluster-robust variance over sticky keys."""
    if units is None:
        return _strata_moments(values, codes, strata)
    n, mean, m2 = np.zeros(strata), np.zeros(strata), np.full(strata, np.inf)
    for index in range(strata):
        hit = codes == index
        if not hit.any():
            n[index], m2[index] = 0.0, 0.0
            continue
        keys, inverse = np.unique(units[hit], return_inverse=True)
        sums = np.bincount(inverse, weights=values[hit], minlength=keys.size)
        counts = np.bincount(inverse, minlength=keys.size).astype(float)
        one = clustered_moments(sums, counts)
        n[index], mean[index], m2[index] = float(one.n), float(one.mean), float(one.m2)
    return Moments(n, mean, m2)


def _strata_moments(
    values: np.ndarray, codes: np.ndarray, strata: int, _units: np.ndarray | None = None
) -> Moments:
    """Moments per stratum (``codes``: each row's stratum index, ``0 .. strata - 1``)."""
    n = np.bincount(codes, minlength=strata).astype(float)
    total = np.bincount(codes, weights=values, minlength=strata)
    mean = np.divide(total, n, out=np.zeros(strata), where=n > 0)
    m2 = np.bincount(codes, weights=(values - mean[codes]) ** 2, minlength=strata)
    return Moments(n, mean, m2)


def _keys(
    frame: pd.DataFrame, starts: list[pd.Timestamp], origin: pd.Timestamp, width: float
) -> np.ndarray:
    """Stratum key of each row: step index and time bucket, as one integer."""
    if frame.empty:
        return np.zeros(0, dtype=np.int64)
    ts = pd.to_datetime(frame["ts"], utc=True)
    step = np.searchsorted(
        np.array([t.value for t in starts], dtype=np.int64), ts.astype("int64"), side="right"
    )
    bucket = ((ts - origin).dt.total_seconds() // width).astype(np.int64).to_numpy()
    return step.astype(np.int64) * 1_000_000 + np.maximum(bucket, 0)


def assess(
    session: Session,
    model: Model,
    rollout: Rollout,
    step: Step,
    config: RolloutSettings,
    now: datetime,
    labeled_rows: LabeledRows,
    estimated: Any = None,
) -> Assessment:
    """Evaluate the rollout's current step: intervals, guardrails, split check, deadlines;
    ``estimated`` is the model's ``performance.estimated`` section (None: not estimated)."""
    schema = ModelSchema.model_validate(model.schema)
    kind = schema.prediction.kind
    alpha = phase_alpha(config)
    bounded = kind is PredictionKind.classification
    loss = config.regression_loss
    champ_v, chall_v = rollout.champion_version, rollout.challenger_version
    origin = _utc(rollout.started_at)
    starts = _step_starts(session, rollout)
    canary_from = starts[0] if config.shadow and starts else (None if config.shadow else origin)
    horizon = _utc(now) - pd.Timedelta(seconds=config.label_horizon_seconds)

    frame = labeled_rows(session, model, since=rollout.started_at)
    waiting = 0
    if len(frame):
        ts = pd.to_datetime(frame["ts"], utc=True)
        young = ts > horizon
        waiting = int(young.sum())
        frame = frame.loc[~young.to_numpy()]
    empty = frame.iloc[0:0] if len(frame.columns) else pd.DataFrame()
    a_all = _arm(frame, "champion", champ_v) if len(frame) else empty
    shadow_rows = _arm(frame, "shadow", chall_v) if len(frame) else empty
    b = _arm(frame, "challenger", chall_v) if len(frame) else empty

    # Shadow: the champion's and the copy's rows of the same request, paired.
    if len(shadow_rows) and len(a_all):
        pairs = a_all.merge(shadow_rows, on="request_id", suffixes=("_a", "_b"))
    else:
        pairs = pd.DataFrame()
    va_p = _pair_values(pairs, "_a", kind, loss)
    vb_p = _pair_values(pairs, "_b", kind, loss)
    diff = _clean(vb_p - va_p)

    # Canary and A/B: champion rows answered since the canary began (not shadow-paired ones).
    if canary_from is not None and len(a_all):
        a = a_all.loc[(pd.to_datetime(a_all["ts"], utc=True) >= canary_from).to_numpy()]
    else:
        a = empty
    va, vb = row_values(a, kind, loss), row_values(b, kind, loss)
    ka, kb = (
        _keys(a, starts, origin, config.stratum_seconds),
        _keys(b, starts, origin, config.stratum_seconds),
    )
    fa, fb = np.isfinite(va), np.isfinite(vb)
    va, ka, vb, kb = va[fa], ka[fa], vb[fb], kb[fb]
    unit_column = _unit_column(frame, config) if config.split == "ab" else None
    ua = _units(a, unit_column)[fa] if unit_column else None
    ub = _units(b, unit_column)[fb] if unit_column else None
    strata, codes = np.unique(np.concatenate([ka, kb]), return_inverse=True)
    moments = _strata_moments if ua is None else _clustered_strata
    result = stratified_sequence(
        moments(va, codes[: ka.size], strata.size, ua),
        moments(vb, codes[ka.size :], strata.size, ub),
        Moments.of(diff) if diff.size else None,
        alpha=alpha,
        tuning_samples=config.tuning_samples,
        max_variance=0.25 if bounded else None,
        paired_max_variance=1.0 if bounded else None,
        min_samples=config.min_compare_samples,
    )
    interval = result.interval
    n_a, n_b = int(result.n_champion), int(result.n_challenger)
    if step.paired:
        step_rows = (
            int((pd.to_datetime(pairs["ts_b"], utc=True) >= _utc(rollout.step_started_at)).sum())
            if len(pairs)
            else 0
        )
    else:
        step_rows = (
            int((pd.to_datetime(b["ts"], utc=True) >= _utc(rollout.step_started_at)).sum())
            if len(b)
            else 0
        )
    means = {
        "champion": float(np.mean(np.concatenate([va_p, va]))) if va_p.size + va.size else None,
        "challenger": float(np.mean(np.concatenate([vb_p, vb]))) if vb_p.size + vb.size else None,
    }

    progress = Progress.from_json(rollout.progress)
    lower = max(-np.inf if progress.lower is None else progress.lower, float(interval.lower))
    upper = min(np.inf if progress.upper is None else progress.upper, float(interval.upper))
    progress = progress.update(lower=finite(lower), upper=finite(upper))

    since = rollout.phase_started_at
    challenger_variant = "shadow" if step.paired else "challenger"
    errors = error_guardrail(session, model, rollout, challenger_variant, since, config)
    latency = latency_guardrail(
        session, model, rollout, challenger_variant, since, config, decisive=not step.paired
    )
    units: tuple[int, int] | None = None
    if unit_column is not None and not step.paired:
        # Distinct sticky keys among the step's labeled rows: labeling does not depend on the
        # arm, so under the policy's split each key lands on the challenger with its weight.
        since = _utc(rollout.step_started_at) + pd.Timedelta(seconds=config.srm_grace_seconds)
        units = (_distinct(a, unit_column, since), _distinct(b, unit_column, since))
    srm, progress = split_check(session, model, rollout, step, now, config, progress, units=units)

    step_seconds = (now - rollout.step_started_at).total_seconds()
    rollout_seconds = (now - rollout.started_at).total_seconds()
    estimate = estimated_difference(estimated, rollout, step, kind, loss)
    decisive = (
        estimate is not None
        and estimate["upper"] is not None
        and min(estimate["rows"].values()) >= config.min_compare_samples
    )
    evidence = Evidence(
        lower=lower,
        upper=upper,
        n_champion=n_a,
        n_challenger=n_b,
        step_samples=step_rows,
        step_seconds=step_seconds,
        error_lower=errors.bound,
        latency_lower=latency.bound,
        latency_tolerated=latency.tolerated,
        srm_log_e=srm.bound,
        rollout_seconds=rollout_seconds,
        estimated_upper=estimate["upper"] if decisive and estimate is not None else np.inf,
    )
    metric = "accuracy" if bounded else f"negative_{loss}_error"
    enough = min(n_a, n_b) >= config.min_compare_samples
    record = {
        "evaluated_at": now.isoformat(),
        "mode": step.mode,
        "weight": step.weight,
        "metric": metric,
        "comparison": "paired"
        if step.paired
        else ("stratified, clustered by sticky key" if unit_column else "stratified"),
        "estimand": "precision-weighted mean over strata (step x time bucket) of the "
        "within-stratum difference; shadow pairs are one stratum",
        "margin": config.margin,
        "alpha": alpha,
        "difference": {
            **interval.as_dict(),
            "running_lower": finite(lower),
            "running_upper": finite(upper),
        },
        "proven": {
            "non_inferior": bool(enough and lower > -config.margin),
            "inferior": bool(enough and upper < -config.margin),
        },
        "metric_values": means,
        "samples": {
            "champion": n_a,
            "challenger": n_b,
            "paired": int(diff.size),
            "step": step_rows,
            "strata": int(result.strata),
            "unused": int(result.unused),
            "waiting_for_label_horizon": waiting,
        },
        "step_seconds": step_seconds,
        "deadline": _deadline(config, step_seconds, rollout_seconds),
        "guardrails": {"error_rate": errors.record, "latency_p99": latency.record},
        "srm": srm.record,
        "estimated_difference": estimate,
    }
    return Assessment(evidence, jsonable(record), progress)


def _group(groups: Any, version: str, variant: str) -> Mapping[str, Any] | None:
    for group in groups or []:
        if (
            isinstance(group, Mapping)
            and str(group.get("version")) == version
            and group.get("variant") == variant
        ):
            return group
    return None


def estimated_difference(
    estimated: Any, rollout: Rollout, step: Step, kind: PredictionKind, loss: str
) -> dict[str, Any] | None:
    """Challenger minus champion from the estimated performance, oriented like the labeled
    difference (positive: the challenger is better), or None when either arm has no estimate.

    The metric is the rollout's: accuracy, or the squared (MSE, from the estimated RMSE) or
    absolute (MAE) error. Each arm's interval gives its standard error (normal, at the
    estimation's confidence); the two are added in quadrature, as for independent windows. It
    is an approximation at one moment, not an always-valid sequence: it is shown, and may only
    roll back (``estimated_rollback``), never promote.
    """
    if not isinstance(estimated, Mapping):
        return None
    groups = estimated.get("groups")
    champion = _group(groups, rollout.champion_version, "champion")
    challenger_variant = "shadow" if step.paired else "challenger"
    challenger = _group(groups, rollout.challenger_version, challenger_variant)
    if champion is None or challenger is None:
        return None
    classification = kind is PredictionKind.classification
    name = "accuracy" if classification else ("rmse" if loss == "squared" else "mae")
    # The rollout compares mean squared errors: the estimated RMSE squared.
    power = 2 if name == "rmse" else 1
    arms: list[tuple[float, float | None, float | None, float]] = []
    for group in (champion, challenger):
        value = (group.get("metrics") or {}).get(name) or {}
        if value.get("estimate") is None:
            return None
        low, high = (
            None if value.get(k) is None else float(value[k]) ** power for k in ("lower", "upper")
        )
        confidence = float(group.get("confidence") or 0.95)
        arms.append((float(value["estimate"]) ** power, low, high, confidence))
    (a, a_low, a_high, confidence), (b, b_low, b_high, _) = arms
    # Positive means "the challenger is better": for a loss, champion minus challenger.
    point = b - a if classification else a - b
    lower = upper = None
    if a_low is not None and a_high is not None and b_low is not None and b_high is not None:
        z = NormalDist().inv_cdf(0.5 + confidence / 2)
        se = math.hypot((a_high - a_low) / (2 * z), (b_high - b_low) / (2 * z))
        lower, upper = point - z * se, point + z * se
    return {
        "estimated": True,
        "metric": "accuracy" if classification else f"negative_{loss}_error",
        "estimate": point,
        "lower": lower,
        "upper": upper,
        "confidence": confidence,
        "champion": {
            "version": rollout.champion_version,
            "estimate": a,
            "lower": a_low,
            "upper": a_high,
        },
        "challenger": {
            "version": rollout.challenger_version,
            "variant": challenger_variant,
            "estimate": b,
            "lower": b_low,
            "upper": b_high,
        },
        "rows": {
            "champion": int(champion.get("rows") or 0),
            "challenger": int(challenger.get("rows") or 0),
        },
        "window": {"since": estimated.get("since"), "until": estimated.get("until")},
        "note": "estimated without labels from the models' scores: shown while labels are "
        "pending, never promotes",
    }


def _deadline(
    config: RolloutSettings, step_seconds: float, rollout_seconds: float
) -> dict[str, Any]:
    """How far the rollout is from its deadlines, and what they do."""
    left = [
        limit - spent
        for limit, spent in (
            (config.max_step_seconds, step_seconds),
            (config.max_rollout_seconds, rollout_seconds),
        )
        if limit is not None
    ]
    return {
        "max_step_seconds": config.max_step_seconds,
        "max_rollout_seconds": config.max_rollout_seconds,
        "action": config.deadline_action,
        "seconds_left": max(min(left), 0.0) if left else None,
        "passed": bool(left) and min(left) <= 0,
    }
