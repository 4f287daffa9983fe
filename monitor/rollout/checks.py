"""Guardrails and the split check of a rollout step, read from the raw records (labeled or not).

- 5xx share: the confidence sequence of the challenger's increase over the champion's must not lie
  wholly above ``max_error_rate_increase``.
- latency: the share of challenger answers slower than an upper confidence bound on the
  champion's quantile times ``1 + max_latency_increase`` must not be shown above ``1 - q``; the
  quantile ``q`` is the highest one with enough rows beyond it on both arms (p99 needs
  thousands; below that p95, p90, ... or wait), and in shadow it is reported, never decisive.
  Reads the newest :data:`LATENCY_ROWS` successful records of each arm.
- split: the sequential SRM test (:mod:`driftloop.monitor.rollout.srm`) on the records each arm
  answered since the step began (after ``srm_grace_seconds``), its e-value multiplied across steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from driftloop.monitor.rollout.decide import Step
from driftloop.monitor.rollout.sequences import (
    Moments,
    mixture_halfwidth,
    mixture_tau2,
    single_sequence,
    unpaired_sequence,
)
from driftloop.monitor.rollout.srm import srm_log_bayes_factor, srm_p_value
from driftloop.monitor.rollout.state import Guardrail, Progress
from driftloop.settings import RolloutSettings
from driftloop.store import Model, RecordRow, Rollout

__all__ = [
    "LATENCY_QUANTILES",
    "LATENCY_ROWS",
    "LatencyCheck",
    "error_guardrail",
    "finite",
    "latency_check",
    "latency_guardrail",
    "quantile_upper",
    "split_check",
]

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
) -> Guardrail:
    """The 5xx-share guardrail: the lower bound of the challenger's increase decides."""
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
    record = {
        "champion": e_a / n_a if n_a else None,
        "challenger": e_b / n_b if n_b else None,
        "records": {"champion": n_a, "challenger": n_b},
        "increase_lower": finite(lower),
        "tolerance": config.max_error_rate_increase,
        "ok": not lower > config.max_error_rate_increase,
    }
    return Guardrail(record, lower, config.max_error_rate_increase)


LATENCY_QUANTILES = (0.99, 0.95, 0.9, 0.75, 0.5)
"""Quantiles the latency guardrail may decide on, the highest first: the highest one both arms
have ``latency_min_tail_rows`` rows beyond decides (p99 needs 2,000 rows per arm by default)."""


@dataclass(frozen=True)
class LatencyCheck:
    """The latency guardrail's finding (``lower`` is what :func:`decide` reads)."""

    quantile: float | None
    champion_upper_ms: float | None
    threshold_ms: float | None
    exceedance: float | None
    lower: float
    decisive: bool
    ok: bool
    note: str

    @property
    def tolerated(self) -> float:
        """Share of challenger answers allowed beyond the threshold."""
        return 1.0 - (self.quantile or 1.0)


def quantile_upper(values: np.ndarray, q: float, *, alpha: float, tuning_samples: int) -> float:
    """Upper confidence bound on the ``q`` quantile, valid uniformly over time.

    Fewer than ``n q + h`` rows lie below the true quantile except with probability ``alpha``
    at any time (``h`` the normal-mixture boundary of a Bernoulli(``q``) count), so the order
    statistic of that rank bounds it (Howard and Ramdas, *Sequential estimation of quantiles
    with applications to A/B-testing and best-arm identification*, Bernoulli 2022).
    """
    n = values.size
    if n == 0:
        return float("inf")
    var = q * (1 - q)
    half = float(mixture_halfwidth(var / n, mixture_tau2(var / tuning_samples, alpha), alpha))
    rank = int(np.ceil(n * q + n * half))
    if rank >= n:
        return float("inf")
    return float(np.partition(values, rank)[rank])


def latency_check(
    champion: np.ndarray,
    challenger: np.ndarray,
    *,
    alpha: float,
    tolerance: float,
    min_tail_rows: int,
    tuning_samples: int,
    decisive: bool = True,
) -> LatencyCheck:
    """Is the challenger's latency quantile shown above the champion's times ``1 + tolerance``?

    Sampling error counts on both arms: the threshold is an upper confidence bound on the
    champion's quantile (times the tolerance), and the challenger's share of answers beyond it
    must be shown, by its own confidence sequence, above ``1 - q``. The quantile is the highest of
    :data:`LATENCY_QUANTILES` both arms have ``min_tail_rows`` rows beyond; with fewer rows
    nothing is decided. ``alpha`` is split between the quantiles that may decide and the arms.
    ``decisive=False`` (shadow: the copies compete with the champion for the same CPU, which is
    not what users would get) reports the values but never fails.
    """
    n = min(champion.size, challenger.size)
    fit = [q for q in LATENCY_QUANTILES if n * (1 - q) >= min_tail_rows]
    if not fit:
        need = int(np.ceil(min_tail_rows / (1 - LATENCY_QUANTILES[-1])))
        note = f"waiting: {n} rows per arm, a quantile needs {need}"
        return LatencyCheck(None, None, None, None, -np.inf, False, True, note)
    q = fit[0]
    share = alpha / (2 * len(LATENCY_QUANTILES))
    upper = quantile_upper(champion, q, alpha=share, tuning_samples=tuning_samples)
    threshold = upper * (1 + tolerance)
    over = (challenger > threshold).astype(float)
    interval = single_sequence(
        Moments.of(over),
        alpha=share,
        tuning_samples=tuning_samples,
        min_samples=2,
        max_variance=0.25,
    )
    lower = float(interval.lower)
    fails = lower > 1 - q
    note = f"p{round(q * 100)} decides" if decisive else "shadow: reported, not decisive"
    return LatencyCheck(
        q,
        finite(upper),
        finite(threshold),
        float(over.mean()),
        lower if decisive else -np.inf,
        decisive,
        not (fails and decisive),
        note,
    )


def latency_guardrail(
    session: Session,
    model: Model,
    rollout: Rollout,
    variant: str,
    since: datetime,
    config: RolloutSettings,
    *,
    decisive: bool = True,
) -> Guardrail:
    """The latency guardrail (see :func:`latency_check`)."""
    a = _latencies(session, model, "champion", rollout.champion_version, since)
    b = _latencies(session, model, variant, rollout.challenger_version, since)
    check = latency_check(
        a,
        b,
        alpha=config.alpha,
        tolerance=config.max_latency_increase,
        min_tail_rows=config.latency_min_tail_rows,
        tuning_samples=config.tuning_samples,
        decisive=decisive,
    )
    record = {
        "champion_ms": float(np.quantile(a, 0.99)) if a.size else None,
        "challenger_ms": float(np.quantile(b, 0.99)) if b.size else None,
        "records": {"champion": int(a.size), "challenger": int(b.size)},
        "quantile": check.quantile,
        "champion_upper_ms": check.champion_upper_ms,
        "tolerance": config.max_latency_increase,
        "threshold_ms": check.threshold_ms,
        "exceedance": check.exceedance,
        "exceedance_lower": finite(check.lower),
        "tolerated_exceedance": check.tolerated if check.quantile else None,
        "decisive": check.decisive,
        "note": check.note,
        "ok": check.ok,
    }
    return Guardrail(record, check.lower, check.tolerated if check.quantile else 1.0)


def split_check(
    session: Session,
    model: Model,
    rollout: Rollout,
    step: Step,
    now: datetime,
    config: RolloutSettings,
    progress: Progress,
    units: tuple[int, int] | None = None,
) -> tuple[Guardrail, Progress]:
    """The split check (its bound: the best log e-value so far) and the progress it leaves.

    ``units``: distinct sticky keys each arm saw in the step (sticky A/B); without them, the
    records each arm answered are counted.
    """
    done = progress.srm_log_e_done
    step_log_e = 0.0
    out: dict[str, Any] = {"expected_weight": step.weight, "checked": False}
    log_e = done
    if not step.paired and 0.0 < step.weight < 1.0:
        if units is not None:
            x_a, x_b = units
        else:
            since = rollout.step_started_at + timedelta(seconds=config.srm_grace_seconds)
            x_a, _ = _record_stats(session, model, "champion", rollout.champion_version, since)
            x_b, _ = _record_stats(session, model, "challenger", rollout.challenger_version, since)
        step_log_e = float(srm_log_bayes_factor(x_a, x_b, step.weight, config.srm_concentration))
        log_e = done + step_log_e
        out.update(
            checked=True,
            counted="units" if units is not None else "records",
            records={"champion": x_a, "challenger": x_b},
            observed_weight=x_b / (x_a + x_b) if x_a + x_b else None,
        )
    best = max(progress.srm_log_e_max, log_e)
    p_value = float(srm_p_value(best))
    out.update(
        log_e=log_e,
        max_log_e=best,
        p_value=p_value,
        alpha=config.srm_alpha,
        ok=best < np.log(1.0 / config.srm_alpha),
    )
    threshold = float(np.log(1.0 / config.srm_alpha))
    return Guardrail(out, best, threshold), progress.update(
        srm_log_e_step=step_log_e, srm_log_e_max=best
    )
