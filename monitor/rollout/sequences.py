"""Always-valid confidence sequences for a difference in means (champion vs challenger).

The boundary is the two-sided normal mixture of Robbins (1970): for a process that behaves like a
Brownian motion in *information time* ``I = 1/V`` (``V`` the variance of the estimate), the
interval ``estimate ± h(V)`` with

    h(V) = sqrt( V (V + tau²) / tau² · (2 log(1/alpha) + log(1 + tau²/V)) )

covers the true difference at every time simultaneously with probability at least ``1 - alpha``
(Ville's inequality on the mixture martingale). With plug-in variances this is the *asymptotic
confidence sequence* of Waudby-Smith, Arnold, Wu, Howard and Ramdas, "Time-uniform central limit
theory and asymptotic confidence sequences" (Annals of Statistics, 2024; arXiv:2103.06476),
Theorem 2.2, where ``tau² = sigma² rho²``; the same boundary is the always-valid interval of the
mixture SPRT of Johari, Koomen, Pekelis and Walsh, "Always valid inference: continuous monitoring
of A/B tests" (Operations Research, 2022).

Paired (shadow): the per-request differences are i.i.d., ``V = s_d²/n``. Unpaired (canary, A/B):
``V = s_a²/n_a + s_b²/n_b``, each arm's variance floored at the pooled within-arm variance (a 5 %
canary arm of a 95 %-accurate model may see no error in its first hundred rows; its own variance
would then be near zero just when its estimate is too good). Because ``Cov(D_s, D_t) = V_t`` for
``s <= t`` whatever the share of traffic each arm gets at each moment, ``D/V`` is a Brownian
motion in ``1/V`` even when the canary weight changes between steps, so one sequence spans every
step.

``tau²`` is tuned so the interval is tightest at ``tuning_samples`` per arm (the ``rho`` choice of
Waudby-Smith et al., eq. (16)). Outcomes in a known range (accuracy) get their variance shrunk
towards the range's maximum by one pseudo-observation, so a run of identical outcomes never gives
a zero-width interval.

Everything is vectorised: inputs may be NumPy arrays (one entry per simulated run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "Interval",
    "Moments",
    "mixture_halfwidth",
    "mixture_tau2",
    "paired_sequence",
    "single_sequence",
    "unpaired_sequence",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Moments:
    """Count, mean and sum of squared deviations of a sample (or of many, as arrays)."""

    n: Any
    mean: Any
    m2: Any

    @classmethod
    def of(cls, values: ArrayLike) -> Moments:
        """The moments of a 1-D sample."""
        x = np.asarray(values, dtype=float)
        if x.size == 0:
            return cls(0, 0.0, 0.0)
        mean = float(x.mean())
        return cls(int(x.size), mean, float(((x - mean) ** 2).sum()))

    def variance(self, max_variance: float | None = None) -> Any:
        """Sample variance; with ``max_variance``, shrunk by one pseudo-observation at it."""
        n = np.asarray(self.n, dtype=float)
        m2 = np.asarray(self.m2, dtype=float)
        if max_variance is None:
            return np.where(n > 1, m2 / np.maximum(n - 1, 1), np.inf)
        return (m2 + max_variance) / np.maximum(n, 1)


@dataclass(frozen=True)
class Interval:
    """A confidence-sequence interval for a difference (or a mean) at one moment."""

    estimate: Any
    lower: Any
    upper: Any
    variance: Any

    def as_dict(self) -> dict[str, float | None]:
        """Scalars as JSON-safe floats (infinite bounds become ``None``)."""
        return {
            key: (None if not np.isfinite(v) else float(v))
            for key, v in (
                ("estimate", self.estimate),
                ("lower", self.lower),
                ("upper", self.upper),
                ("variance", self.variance),
            )
        }


def _alpha_term(alpha: float) -> float:
    log_term = -2.0 * np.log(alpha)
    return float(log_term + np.log(1.0 + log_term))


def mixture_tau2(variance_at_target: ArrayLike, alpha: float) -> FloatArray:
    """Mixing variance that makes the boundary tightest at the given estimate variance."""
    return np.asarray(variance_at_target, dtype=float) * _alpha_term(alpha)


def mixture_halfwidth(variance: ArrayLike, tau2: ArrayLike, alpha: float) -> FloatArray:
    """Half-width of the two-sided normal-mixture boundary at estimate variance ``variance``."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be within (0, 1), got {alpha!r}")
    v = np.asarray(variance, dtype=float)
    t2 = np.maximum(np.asarray(tau2, dtype=float), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        width = np.sqrt(v * (v + t2) / t2 * (2.0 * np.log(1.0 / alpha) + np.log1p(t2 / v)))
    return np.where(np.isfinite(v) & (v > 0), width, np.where(v == 0, 0.0, np.inf))


def _interval(estimate: Any, variance: Any, tau2: Any, alpha: float) -> Interval:
    half = mixture_halfwidth(variance, tau2, alpha)
    est = np.asarray(estimate, dtype=float)
    known = np.isfinite(half) & np.isfinite(est)
    lower = np.where(known, est - np.where(known, half, 0.0), -np.inf)
    upper = np.where(known, est + np.where(known, half, 0.0), np.inf)
    return Interval(est, lower, upper, np.asarray(variance, dtype=float))


def single_sequence(
    moments: Moments,
    *,
    alpha: float,
    tuning_samples: int,
    max_variance: float | None = None,
    min_samples: int = 2,
) -> Interval:
    """Confidence sequence for one mean (used by the latency guardrail)."""
    var = moments.variance(max_variance)
    n = np.asarray(moments.n, dtype=float)
    ok = n >= max(min_samples, 2)
    v = np.where(ok, var / np.maximum(n, 1), np.inf)
    tau2 = mixture_tau2(var / tuning_samples, alpha)
    return _interval(np.where(ok, moments.mean, np.nan), v, tau2, alpha)


def paired_sequence(
    differences: Moments,
    *,
    alpha: float,
    tuning_samples: int,
    max_variance: float | None = None,
    min_samples: int = 2,
) -> Interval:
    """Confidence sequence for the mean of per-request differences (shadow: same requests)."""
    return single_sequence(
        differences,
        alpha=alpha,
        tuning_samples=tuning_samples,
        max_variance=max_variance,
        min_samples=min_samples,
    )


def unpaired_sequence(
    a: Moments,
    b: Moments,
    *,
    alpha: float,
    tuning_samples: int,
    max_variance: float | None = None,
    min_samples: int = 2,
) -> Interval:
    """Confidence sequence for ``mean(b) - mean(a)`` from two independent samples."""
    var_a, var_b = a.variance(max_variance), b.variance(max_variance)
    n_a, n_b = np.asarray(a.n, dtype=float), np.asarray(b.n, dtype=float)
    # Neither arm's variance is taken below the pooled one: a small arm that by chance saw few
    # errors would otherwise get a too narrow interval just when its estimate is too good.
    pooled = (np.asarray(a.m2, dtype=float) + np.asarray(b.m2, dtype=float)) / np.maximum(
        n_a + n_b - 2, 1
    )
    var_a, var_b = np.maximum(var_a, pooled), np.maximum(var_b, pooled)
    ok = (n_a >= max(min_samples, 2)) & (n_b >= max(min_samples, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(ok, var_a / np.maximum(n_a, 1) + var_b / np.maximum(n_b, 1), np.inf)
    tau2 = mixture_tau2((var_a + var_b) / tuning_samples, alpha)
    estimate = np.where(ok, np.asarray(b.mean, dtype=float) - np.asarray(a.mean, dtype=float), 0.0)
    return _interval(np.where(ok, estimate, np.nan), v, tau2, alpha)
