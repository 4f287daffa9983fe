"""Guardrails and the split check of a rollout step, read from the raw records (labeled or not).

- 5xx share: the confidence sequence of the challenger's increase over the champion's must not lie
  wholly above ``max_error_rate_increase``.
- p99 latency: the share of challenger answers slower than the champion's p99 times
  ``1 + max_latency_increase`` must not be shown above 1 % (a challenger whose p99 is within the
  tolerance exceeds that threshold at most 1 % of the time). Reads the newest
  :data:`LATENCY_ROWS` successful records of each arm.
- split: the sequential SRM test (:mod:`driftloop.monitor.rollout.srm`) on the records each arm
  answered since the step began (after ``srm_grace_seconds``), its e-value multiplied across steps.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from driftloop.monitor.rollout.decide import LATENCY_EXCEEDANCE, Step
from driftloop.monitor.rollout.sequences import Moments, single_sequence, unpaired_sequence
from driftloop.monitor.rollout.srm import srm_log_bayes_factor, srm_p_value
from driftloop.settings import RolloutSettings
from driftloop.store import Model, RecordRow, Rollout

__all__ = ["LATENCY_ROWS", "error_guardrail", "finite", "latency_guardrail", "split_check"]

LATENCY_ROWS = 20_000
"""Newest records per variant the latency guardrail reads."""


def finite(value: Any) -> float | None:
    """``value`` as a float, or ``None`` when it is not finite."""
    v = float(np.asarray(value))
    return v if np.isfinite(v) else None


def _record_stats(
    session: Session, model: Model, variant: str, version: str, since: datetime
) -> tuple[int, int]:
    total, errors = session.execute(
        select(func.count(), func.sum(case((RecordRow.status >= 500, 1), else_=0))).where(
            RecordRow.model_id == model.id,
            RecordRow.variant == variant,
            RecordRow.version == version,
            RecordRow.ts >= since,
        )
    ).one()
    return int(total or 0), int(errors or 0)


def _latencies(
    session: Session, model: Model, variant: str, version: str, since: datetime
) -> np.ndarray:
    rows = session.scalars(
        select(RecordRow.latency_ms)
        .where(
            RecordRow.model_id == model.id,
            RecordRow.variant == variant,
            RecordRow.version == version,
            RecordRow.status < 500,
            RecordRow.ts >= since,
        )
        .order_by(RecordRow.ts.desc())
        .limit(LATENCY_ROWS)
    ).all()
    return np.asarray(rows, dtype=float)


def _bernoulli(n: int, k: int) -> Moments:
    p = k / n if n else 0.0
    return Moments(n, p, n * p * (1 - p))


def error_guardrail(
    session: Session,
    model: Model,
    rollout: Rollout,
    variant: str,
    since: datetime,
    config: RolloutSettings,
) -> dict[str, Any]:
    """The 5xx-share guardrail; ``_lower`` is the bound the decision reads."""
    n_a, e_a = _record_stats(session, model, "champion", rollout.champion_version, since)
    n_b, e_b = _record_stats(session, model, variant, rollout.challenger_version, since)
    interval = unpaired_sequence(
        _bernoulli(n_a, e_a),
        _bernoulli(n_b, e_b),
        alpha=config.alpha,
        tuning_samples=config.tuning_samples,
        min_samples=config.min_compare_samples,
        max_variance=0.25,
    )
    lower = float(interval.lower)
    return {
        "champion": e_a / n_a if n_a else None,
        "challenger": e_b / n_b if n_b else None,
        "records": {"champion": n_a, "challenger": n_b},
        "increase_lower": finite(lower),
        "tolerance": config.max_error_rate_increase,
        "ok": not lower > config.max_error_rate_increase,
        "_lower": lower,
    }


def latency_guardrail(
    session: Session,
    model: Model,
    rollout: Rollout,
    variant: str,
    since: datetime,
    config: RolloutSettings,
) -> dict[str, Any]:
    """The p99-latency guardrail; ``_lower`` is the bound the decision reads."""
    a = _latencies(session, model, "champion", rollout.champion_version, since)
    b = _latencies(session, model, variant, rollout.challenger_version, since)
    out: dict[str, Any] = {
        "champion_ms": float(np.quantile(a, 0.99)) if a.size else None,
        "challenger_ms": float(np.quantile(b, 0.99)) if b.size else None,
        "tolerance": config.max_latency_increase,
        "threshold_ms": None,
        "exceedance_lower": None,
        "ok": True,
        "_lower": -np.inf,
    }
    if a.size < config.min_compare_samples or b.size < config.min_compare_samples:
        return out
    threshold = float(np.quantile(a, 1 - LATENCY_EXCEEDANCE)) * (1 + config.max_latency_increase)
    over = (b > threshold).astype(float)
    interval = single_sequence(
        Moments.of(over),
        alpha=config.alpha,
        tuning_samples=config.tuning_samples,
        min_samples=config.min_compare_samples,
        max_variance=0.25,
    )
    lower = float(interval.lower)
    out.update(
        threshold_ms=threshold,
        exceedance=float(over.mean()),
        exceedance_lower=finite(lower),
        ok=not lower > LATENCY_EXCEEDANCE,
        _lower=lower,
    )
    return out


def split_check(
    session: Session,
    model: Model,
    rollout: Rollout,
    step: Step,
    now: datetime,
    config: RolloutSettings,
    progress: dict[str, Any],
) -> dict[str, Any]:
    """The split check; updates ``progress`` (step and best e-values); ``_log_e`` decides."""
    done = float(progress.get("srm_log_e_done", 0.0))
    out: dict[str, Any] = {"expected_weight": step.weight, "checked": False}
    log_e = done
    if not step.paired and 0.0 < step.weight < 1.0:
        since = rollout.step_started_at + timedelta(seconds=config.srm_grace_seconds)
        x_a, _ = _record_stats(session, model, "champion", rollout.champion_version, since)
        x_b, _ = _record_stats(session, model, "challenger", rollout.challenger_version, since)
        step_log_e = float(srm_log_bayes_factor(x_a, x_b, step.weight, config.srm_concentration))
        log_e = done + step_log_e
        progress["srm_log_e_step"] = step_log_e
        out.update(
            checked=True,
            records={"champion": x_a, "challenger": x_b},
            observed_weight=x_b / (x_a + x_b) if x_a + x_b else None,
        )
    else:
        progress["srm_log_e_step"] = 0.0
    best = max(float(progress.get("srm_log_e_max", 0.0)), log_e)
    progress["srm_log_e_max"] = best
    p_value = float(srm_p_value(best))
    out.update(
        log_e=log_e,
        max_log_e=best,
        p_value=p_value,
        alpha=config.srm_alpha,
        ok=best < np.log(1.0 / config.srm_alpha),
        _log_e=best,
    )
    return out
