"""Vectorised simulation of many rollouts, evaluated every tick exactly as the service does.

Each run is one rollout of a classifier: the champion and the challenger have fixed accuracies,
requests arrive every tick (one evaluation interval), a share of them gets labeled, and the split
between the models follows the routing policy (or a skewed one, to exercise the SRM check). At
every tick each active run is evaluated with :func:`driftloop.monitor.rollout.decide.decide` on
its confidence sequence and SRM e-value, and advances, promotes or rolls back. NumPy carries all
runs at once, so 500 rollouts of a few thousand ticks take seconds.

Used by ``bench/rollout_simulation.py`` and by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftloop.monitor.rollout.decide import Action, Evidence, decide, phase_alpha, plan
from driftloop.monitor.rollout.sequences import (
    Interval,
    Moments,
    paired_sequence,
    single_sequence,
    unpaired_sequence,
)
from driftloop.monitor.rollout.srm import srm_log_bayes_factor
from driftloop.monitor.rollout.strata import stratified_sequence
from driftloop.settings import RolloutSettings

__all__ = [
    "Outcome",
    "Scenario",
    "heavy_tailed_latency",
    "simulate",
    "simulate_latency",
]


@dataclass(frozen=True)
class Scenario:
    """The world one batch of simulated rollouts lives in.

    Accuracy may move over time, equally for both models: by ``trend_per_hour`` for the first
    ``trend_hours`` (then it stays), plus a cycle of ``cycle_amplitude`` over ``cycle_hours``.
    Labels arrive at once, or after an exponential delay whose mean depends on whether the
    (served) answer was right: ``error_label_minutes`` and ``correct_label_minutes``.
    """

    champion_accuracy: float = 0.85
    challenger_accuracy: float = 0.85
    requests_per_tick: int = 200
    label_rate: float = 0.5
    split_skew: float = 1.0
    agreement: float = 0.7
    tick_seconds: float = 60.0
    max_ticks: int = 1500
    trend_per_hour: float = 0.0
    trend_hours: float = 2.0
    cycle_amplitude: float = 0.0
    cycle_hours: float = 24.0
    error_label_minutes: float | None = None
    correct_label_minutes: float | None = None

    def shift(self, tick: int) -> float:
        """How far both models' accuracy has moved at ``tick``."""
        hours = tick * self.tick_seconds / 3600.0
        trend = self.trend_per_hour * min(hours, self.trend_hours)
        return trend + self.cycle_amplitude * float(np.sin(2 * np.pi * hours / self.cycle_hours))

    @property
    def delayed(self) -> bool:
        """Labels arrive late (and maybe informatively so)."""
        return self.error_label_minutes is not None or self.correct_label_minutes is not None

    def hazards(self) -> tuple[float, float]:
        """Per-tick chance that a pending label of a (correct, wrong) answer arrives."""
        minutes = self.tick_seconds / 60.0

        def hazard(mean: float | None) -> float:
            return 1.0 if not mean else float(1.0 - np.exp(-minutes / mean))

        return hazard(self.correct_label_minutes), hazard(self.error_label_minutes)


@dataclass
class Outcome:
    """Per-run results: the final action, when, and the labeled rows it took."""

    action: NDArray[np.int8]
    ticks: NDArray[np.int64]
    labeled: NDArray[np.int64]
    final_step: NDArray[np.int64]
    reason: NDArray[np.int8]
    summary: dict[str, float] = field(default_factory=dict)

    def rate(self, action: Action) -> float:
        """Share of runs that ended in ``action``."""
        return float(np.mean(self.action == action))

    def median_labeled(self, action: Action) -> float:
        """Median labeled rows (both arms) consumed by the runs that ended in ``action``."""
        hit = self.action == action
        return float(np.median(self.labeled[hit])) if hit.any() else float("nan")

    def median_minutes(self, tick_seconds: float = 60.0) -> float:
        """Median time to a decision (promote or roll back) of the runs that reached one."""
        hit = self.action != Action.hold
        return float(np.median(self.ticks[hit])) * tick_seconds / 60 if hit.any() else float("nan")


def _pair_probabilities(p_a: float, p_b: float, agreement: float) -> NDArray[np.float64]:
    """Joint correctness of two models on one request: (both, only champion, only challenger,
    neither); ``agreement`` moves the joint from independent (0) to maximal overlap (1)."""
    p11 = p_a * p_b + agreement * (min(p_a, p_b) - p_a * p_b)
    return np.array([p11, p_a - p11, p_b - p11, 1.0 - p_a - p_b + p11])


def _fixed(interval: Interval, alpha: float) -> tuple[Any, Any]:
    """The fixed-sample interval of the same estimate: what a static threshold re-checked every
    interval uses (the peer the benchmark compares with)."""
    half = NormalDist().inv_cdf(1 - alpha / 2) * np.sqrt(interval.variance)
    known = np.isfinite(half) & np.isfinite(interval.estimate)
    lower = np.where(known, interval.estimate - np.where(known, half, 0), -np.inf)
    upper = np.where(known, interval.estimate + np.where(known, half, 0), np.inf)
    return lower, upper


def _clip(p: float) -> float:
    return float(min(max(p, 0.001), 0.999))


def simulate(
    config: RolloutSettings,
    scenario: Scenario,
    runs: int,
    seed: int = 0,
    *,
    boundary: str = "mixture",
    design: str = "stratified",
) -> Outcome:
    """Simulate ``runs`` rollouts under ``scenario`` and return how each ended.

    ``design="stratified"`` is the monitor's comparison (one sequence over the shadow pairs and
    every canary step x time-bucket stratum, at ``alpha``); ``design="pooled"`` the earlier one
    (canary rows pooled across steps, shadow and canary sequences at ``alpha/2`` each), kept to
    measure what changed. ``boundary="fixed"`` swaps the confidence sequence for the fixed-sample
    interval, to show what checking a static threshold every minute does to the error rates.
    """
    if boundary not in ("mixture", "fixed"):
        raise ValueError(f"boundary must be mixture or fixed, got {boundary!r}")
    if design not in ("stratified", "pooled"):
        raise ValueError(f"design must be stratified or pooled, got {design!r}")
    rng = np.random.default_rng(seed)
    steps = plan(config)
    last = len(steps) - 1
    alpha = phase_alpha(config, split=design == "pooled")
    weights = np.array([s.weight for s in steps])
    paired_step = np.array([s.paired for s in steps])
    n_req = scenario.requests_per_tick
    bucket_ticks = max(round(config.stratum_seconds / scenario.tick_seconds), 1)
    n_strata = scenario.max_ticks // bucket_ticks + len(steps) + 2

    step = np.zeros(runs, dtype=np.int64)
    step_start = np.zeros(runs, dtype=np.int64)
    step_samples = np.zeros(runs)
    active = np.ones(runs, dtype=bool)
    stratum = np.zeros(runs, dtype=np.int64)
    pair_n, pair_sum, pair_sq = np.zeros(runs), np.zeros(runs), np.zeros(runs)
    sn, sk = np.zeros((2, runs, n_strata)), np.zeros((2, runs, n_strata))
    labels = _Labels(scenario, config, runs, n_strata, rng)
    split = np.zeros((2, runs))
    srm_done = np.zeros(runs)
    run_lower, run_upper = np.full(runs, -np.inf), np.full(runs, np.inf)
    out_action = np.zeros(runs, dtype=np.int8)
    out_reason = np.zeros(runs, dtype=np.int8)
    out_ticks = np.full(runs, scenario.max_ticks, dtype=np.int64)
    labeled = np.zeros(runs, dtype=np.int64)
    columns = np.arange(runs)

    for tick in range(scenario.max_ticks):
        if not active.any():
            break
        shift = scenario.shift(tick)
        p_a = _clip(scenario.champion_accuracy + shift)
        p_b = _clip(scenario.challenger_accuracy + shift)
        shadow = active & paired_step[step]
        canary = active & ~paired_step[step]
        if tick and tick % bucket_ticks == 0:
            stratum = np.where(canary, np.minimum(stratum + 1, n_strata - 1), stratum)
        n_lab = rng.binomial(n_req, scenario.label_rate, runs)
        fresh = np.zeros((8, runs), dtype=np.int64)
        if shadow.any():
            cells = rng.multinomial(n_lab, _pair_probabilities(p_a, p_b, scenario.agreement))
            fresh[:4] = np.where(shadow[:, None], cells, 0).T
        if canary.any():
            share = np.clip(weights[step] * scenario.split_skew, 0.0, 1.0)
            to_b = rng.binomial(n_req, share)
            counts = np.stack([n_req - to_b, to_b])
            lab = rng.binomial(counts, scenario.label_rate)
            correct = rng.binomial(lab, np.array([[p_a], [p_b]]))
            split += np.where(canary[None, :], counts, 0)
            lab, correct = np.where(canary, lab, 0), np.where(canary, correct, 0)
            fresh[4], fresh[5], fresh[6], fresh[7] = (
                correct[0],
                lab[0] - correct[0],
                correct[1],
                lab[1] - correct[1],
            )
        for cells, at in labels.tick(tick, fresh, stratum):
            pairs_in, canary_in = cells[:4], cells[4:]
            pair_n += pairs_in.sum(axis=0)
            pair_sum += pairs_in[2] - pairs_in[1]
            pair_sq += pairs_in[1] + pairs_in[2]
            sn[0, columns, at] += canary_in[0] + canary_in[1]
            sk[0, columns, at] += canary_in[0]
            sn[1, columns, at] += canary_in[2] + canary_in[3]
            sk[1, columns, at] += canary_in[2]
            entered = np.where(shadow, pairs_in.sum(axis=0), canary_in[2] + canary_in[3])
            step_samples += np.where(active, entered, 0)
            labeled += pairs_in.sum(axis=0) + canary_in.sum(axis=0)

        interval, n_a, n_b, _ = _comparison(
            config, design, alpha, pair_n, pair_sum, pair_sq, sn, sk, paired_step[step]
        )
        lo, hi = (
            (interval.lower, interval.upper) if boundary == "mixture" else _fixed(interval, alpha)
        )
        run_lower = np.maximum(run_lower, lo)
        run_upper = np.minimum(run_upper, hi)
        w = weights[step]
        srm_now = np.where(canary, _srm_per_run(split, w, config.srm_concentration), 0.0)
        evidence = Evidence(
            lower=run_lower,
            upper=run_upper,
            n_champion=n_a,
            n_challenger=n_b,
            step_samples=step_samples,
            step_seconds=(tick - step_start + 1) * scenario.tick_seconds,
            srm_log_e=srm_done + srm_now,
            rollout_seconds=(tick + 1) * scenario.tick_seconds,
        )
        action, reason = decide(config, step, last, evidence)
        action = np.where(active, action, Action.hold)
        ended = (action == Action.promote) | (action == Action.rollback)
        out_action[ended] = action[ended]
        out_reason[ended] = reason[ended]
        out_ticks[ended] = tick + 1
        active &= ~ended
        moved = action == Action.advance
        srm_done = np.where(moved, srm_done + srm_now, srm_done)
        step = np.where(moved, step + 1, step)
        stratum = np.where(moved, np.minimum(stratum + 1, n_strata - 1), stratum)
        step_start = np.where(moved, tick + 1, step_start)
        step_samples = np.where(moved, 0, step_samples)
        split[:, moved] = 0
    return Outcome(out_action, out_ticks, labeled, step, out_reason)


class _Labels:
    """Labeled rows on their way into the comparison: waiting for their label (an exponential
    delay per outcome) and for the label horizon (cohorts of rows of the same few ticks).

    Eight kinds of rows, per run: the four shadow pair cells (both right, only the champion,
    only the challenger, neither) and the canary's champion right/wrong, challenger right/wrong.
    In shadow the label follows the served (champion's) answer.
    """

    def __init__(
        self,
        scenario: Scenario,
        config: RolloutSettings,
        runs: int,
        n_strata: int,
        rng: np.random.Generator,
    ) -> None:
        h_ok, h_err = scenario.hazards()
        self.hazard = np.array([h_ok, h_ok, h_err, h_err, h_ok, h_err, h_ok, h_err])[:, None]
        self.delayed = scenario.delayed
        self.rng = rng
        horizon = int(np.ceil(config.label_horizon_seconds / scenario.tick_seconds))
        self.cohort = max(int(np.ceil(horizon / 6)), 1)
        self.slots = int(np.ceil(horizon / self.cohort)) + 1 if horizon else 0
        self.ring_wait = np.zeros((self.slots, 8, runs), dtype=np.int64)
        self.ring_got = np.zeros((self.slots, 8, runs), dtype=np.int64)
        self.ring_stratum = np.zeros((self.slots, runs), dtype=np.int64)
        self.pool = np.zeros((8, runs, n_strata), dtype=np.int64)
        self.columns = np.arange(runs)

    def _arrive(self, waiting: NDArray[np.int64], hazard: Any) -> NDArray[np.int64]:
        out = np.zeros_like(waiting)
        live = waiting > 0
        if live.any():
            out[live] = self.rng.binomial(
                waiting[live], np.broadcast_to(hazard, waiting.shape)[live]
            )
        return out

    def tick(
        self, tick: int, fresh: NDArray[np.int64], stratum: NDArray[np.int64]
    ) -> list[tuple[NDArray[np.int64], NDArray[np.int64]]]:
        """Add this tick's labeled rows; return the rows entering the comparison, by stratum."""
        entering: list[tuple[NDArray[np.int64], NDArray[np.int64]]] = []
        if self.slots:
            slot = (tick // self.cohort) % self.slots
            if tick % self.cohort == 0:
                # The cohort this slot held is past the horizon: its rows enter.
                entering.append((self.ring_got[slot].copy(), self.ring_stratum[slot].copy()))
                self.pool[:, self.columns, self.ring_stratum[slot]] += self.ring_wait[slot]
                self.ring_got[slot] = 0
                self.ring_wait[slot] = 0
                self.ring_stratum[slot] = stratum
            if self.delayed:
                self.ring_wait[slot] += fresh
                got = self._arrive(self.ring_wait, self.hazard[None])
                self.ring_wait -= got
                self.ring_got += got
            else:
                self.ring_got[slot] += fresh
        elif self.delayed:
            self.pool[:, self.columns, stratum] += fresh
        else:
            entering.append((fresh, stratum))
        if self.delayed and self.pool.any():
            got = self._arrive(self.pool, self.hazard[:, :, None])
            self.pool -= got
            for index in np.flatnonzero(got.sum(axis=(0, 1))):
                entering.append((got[:, :, index], np.full(len(self.columns), index)))
        return entering


def _comparison(
    config: RolloutSettings,
    design: str,
    alpha: float,
    pair_n: Any,
    pair_sum: Any,
    pair_sq: Any,
    sn: Any,
    sk: Any,
    in_shadow: Any,
) -> tuple[Interval, Any, Any, Any]:
    """The interval of every run: stratified (the monitor's) or pooled (the earlier design)."""
    mean_d = np.divide(pair_sum, pair_n, out=np.zeros_like(pair_n), where=pair_n > 0)
    pairs = Moments(pair_n, mean_d, pair_sq - pair_n * mean_d**2)
    if design == "stratified":
        p = np.divide(sk, sn, out=np.zeros_like(sk), where=sn > 0)
        champion, challenger = (Moments(sn[i], p[i], sn[i] * p[i] * (1 - p[i])) for i in (0, 1))
        result = stratified_sequence(
            champion,
            challenger,
            pairs,
            alpha=alpha,
            tuning_samples=config.tuning_samples,
            max_variance=0.25,
            paired_max_variance=1.0,
            min_samples=config.min_compare_samples,
        )
        return result.interval, result.n_champion, result.n_challenger, in_shadow
    paired = paired_sequence(
        pairs,
        alpha=alpha,
        tuning_samples=config.tuning_samples,
        max_variance=1.0,
        min_samples=config.min_compare_samples,
    )
    arm_n, arm_k = sn.sum(axis=-1), sk.sum(axis=-1)
    p_hat = np.divide(arm_k, arm_n, out=np.zeros_like(arm_k), where=arm_n > 0)
    moments = [Moments(arm_n[i], p_hat[i], arm_n[i] * p_hat[i] * (1 - p_hat[i])) for i in (0, 1)]
    unpaired = unpaired_sequence(
        *moments,
        alpha=alpha,
        tuning_samples=config.tuning_samples,
        max_variance=0.25,
        min_samples=config.min_compare_samples,
    )
    interval = Interval(
        np.where(in_shadow, paired.estimate, unpaired.estimate),
        np.where(in_shadow, paired.lower, unpaired.lower),
        np.where(in_shadow, paired.upper, unpaired.upper),
        np.where(in_shadow, paired.variance, unpaired.variance),
    )
    return interval, pair_n + arm_n[0], pair_n + arm_n[1], in_shadow


def _srm_per_run(
    split: NDArray[np.float64], w: NDArray[np.float64], k: float
) -> NDArray[np.float64]:
    out = np.zeros(w.shape)
    for value in np.unique(w):
        if 0.0 < value < 1.0:
            hit = w == value
            out[hit] = srm_log_bayes_factor(split[0, hit], split[1, hit], float(value), k)
    return out


def heavy_tailed_latency(rng: np.random.Generator, size: Any, scale: float = 1.0) -> Any:
    """Latencies in ms: lognormal around 20 ms, one answer in twenty stretched by a Pareto tail
    (garbage collection, a busy core)."""
    base = np.exp(rng.normal(np.log(20.0), 0.5, size))
    tail = rng.random(size) < 0.05
    return scale * base * np.where(tail, 1.0 + rng.pareto(1.5, size), 1.0)


def simulate_latency(
    config: RolloutSettings,
    mode: str,
    runs: int,
    seed: int = 0,
    *,
    ticks: int = 60,
    requests_per_tick: int = 200,
    weight: float = 0.05,
    slowdown: float = 1.0,
    rule: str = "quantile",
) -> float:
    """Share of ``runs`` in which the latency guardrail rolls back within ``ticks`` evaluations.

    ``mode``: ``shadow`` (every request answered by both), ``canary`` (``weight`` to the
    challenger) or ``ab`` (half each); both arms draw from :func:`heavy_tailed_latency`, the
    challenger's ``slowdown`` times slower. ``rule="quantile"`` is the monitor's check
    (:func:`~driftloop.monitor.rollout.checks.latency_check`); ``rule="exact_p99"`` the earlier
    one, which took the champion's empirical p99 as exact and decided in shadow too.
    """
    from driftloop.monitor.rollout.checks import latency_check

    rng = np.random.default_rng(seed)
    share = {"shadow": 1.0, "canary": weight, "ab": 0.5}[mode]
    n_a = requests_per_tick if mode == "shadow" else round(requests_per_tick * (1 - share))
    n_b = round(requests_per_tick * share)
    failed = 0
    for _ in range(runs):
        a = heavy_tailed_latency(rng, (ticks, n_a))
        b = heavy_tailed_latency(rng, (ticks, n_b), slowdown)
        for t in range(1, ticks + 1):
            xa, xb = a[:t].ravel(), b[:t].ravel()
            if rule == "exact_p99":
                lower = _exact_p99_lower(xa, xb, config)
                fails = lower > 0.01
            else:
                check = latency_check(
                    xa,
                    xb,
                    alpha=config.alpha,
                    tolerance=config.max_latency_increase,
                    min_tail_rows=config.latency_min_tail_rows,
                    tuning_samples=config.tuning_samples,
                    decisive=mode != "shadow",
                )
                fails = not check.ok
            if fails:
                failed += 1
                break
    return failed / runs


def _exact_p99_lower(a: Any, b: Any, config: RolloutSettings) -> float:
    """The earlier latency rule's bound (for the comparison only)."""
    if a.size < config.min_compare_samples or b.size < config.min_compare_samples:
        return -np.inf
    threshold = float(np.quantile(a, 0.99)) * (1 + config.max_latency_increase)
    over = (b > threshold).astype(float)
    interval = single_sequence(
        Moments.of(over),
        alpha=config.alpha,
        tuning_samples=config.tuning_samples,
        min_samples=config.min_compare_samples,
        max_variance=0.25,
    )
    return float(interval.lower)


@dataclass(frozen=True)
class StickyOutcome:
    """Share of A/A sticky A/B runs the split check rolled back, and that the primary
    comparison decided (either way), each by requests (the earlier design) and by unit."""

    srm_by_request: float
    srm_by_unit: float
    decided_by_row: float
    decided_by_unit: float


def simulate_sticky(
    config: RolloutSettings,
    runs: int,
    seed: int = 0,
    *,
    users: int = 5000,
    sigma: float = 1.5,
    weight: float = 0.5,
    requests_per_tick: int = 200,
    ticks: int = 240,
) -> StickyOutcome:
    """A/A sticky A/B at a constant ``weight``: users of lognormal activity (``sigma``) and of
    their own accuracy (Beta around the champion's 0.85), each always on the same arm.

    The split check and the margin-0 comparison are run every tick, once on requests and rows
    (what the earlier design did) and once on distinct users and with the cluster-robust variance.
    """
    from driftloop.monitor.rollout.units import clustered_moments, unit_split_log_e

    rng = np.random.default_rng(seed)
    threshold = np.log(1.0 / config.srm_alpha)
    activity = np.exp(rng.normal(0.0, sigma, (runs, users)))
    rate = requests_per_tick * activity / activity.sum(axis=1, keepdims=True)
    accuracy = rng.beta(8.5, 1.5, (runs, users))
    arm_b = rng.random((runs, users)) < weight
    requests, correct, labeled = (np.zeros((runs, users)) for _ in range(3))
    fired_req, fired_unit, wrong_row, wrong_unit = (np.zeros(runs, dtype=bool) for _ in range(4))

    def arms(x: Any) -> tuple[Any, Any]:
        return np.where(arm_b, 0.0, x).sum(axis=1), np.where(arm_b, x, 0.0).sum(axis=1)

    for tick in range(ticks):
        new = rng.poisson(rate)
        lab = rng.binomial(new, 0.5)
        requests += new
        labeled += lab
        correct += rng.binomial(lab, accuracy)
        if (tick + 1) % 5:
            continue  # evaluated every five ticks: the split and intervals move slowly
        x_a, x_b = arms(requests)
        u_a, u_b = arms(requests > 0)
        k = config.srm_concentration
        fired_req |= srm_log_bayes_factor(x_a, x_b, weight, k) >= threshold
        fired_unit |= unit_split_log_e(u_a, u_b, weight, k) >= threshold
        (n_a, n_b), (k_a, k_b) = arms(labeled), arms(correct)
        p_a = np.divide(k_a, n_a, out=np.zeros(runs), where=n_a > 0)
        p_b = np.divide(k_b, n_b, out=np.zeros(runs), where=n_b > 0)
        rows = unpaired_sequence(
            Moments(n_a, p_a, n_a * p_a * (1 - p_a)),
            Moments(n_b, p_b, n_b * p_b * (1 - p_b)),
            alpha=config.alpha,
            tuning_samples=config.tuning_samples,
            min_samples=config.min_compare_samples,
            max_variance=0.25,
        )
        wrong_row |= (rows.lower > 0) | (rows.upper < 0)
        units = unpaired_sequence(
            clustered_moments(np.where(arm_b, 0.0, correct), np.where(arm_b, 0.0, labeled)),
            clustered_moments(np.where(arm_b, correct, 0.0), np.where(arm_b, labeled, 0.0)),
            alpha=config.alpha,
            tuning_samples=config.tuning_samples,
            min_samples=config.min_compare_samples,
        )
        wrong_unit |= (units.lower > 0) | (units.upper < 0)
    return StickyOutcome(
        float(fired_req.mean()),
        float(fired_unit.mean()),
        float(wrong_row.mean()),
        float(wrong_unit.mean()),
    )
