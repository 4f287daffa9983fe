"""Sequential SRM: the Bayes factor, its error rate under repeated looks, its power."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from driftloop.monitor.rollout.srm import srm_log_bayes_factor, srm_p_value


def test_the_bayes_factor_is_the_beta_mixture_over_the_null_likelihood() -> None:
    x_a, x_b, w, k = 180, 14, 0.05, 100.0
    # The likelihood ratio integrated over the beta prior, in O(1) units for the quadrature.
    ratio, _ = integrate.quad(
        lambda t: (
            (t / w) ** x_b * ((1 - t) / (1 - w)) ** x_a * stats.beta.pdf(t, k * w, k * (1 - w))
        ),
        0,
        1,
        points=[w],
        limit=200,
        epsabs=0,
    )
    assert float(srm_log_bayes_factor(x_a, x_b, w, k)) == pytest.approx(np.log(ratio), rel=1e-6)


def test_checking_after_every_request_keeps_false_alarms_under_alpha() -> None:
    rng = np.random.default_rng(2)
    runs, horizon, w, alpha = 500, 5000, 0.25, 0.01
    to_b = rng.random((runs, horizon)) < w
    x_b = np.cumsum(to_b, axis=1)
    x_a = np.arange(1, horizon + 1) - x_b
    log_e = srm_log_bayes_factor(x_a, x_b, w, 100.0)
    assert (log_e.max(axis=1) >= np.log(1 / alpha)).mean() <= alpha


def test_a_skewed_split_is_detected_and_the_p_value_is_anytime_valid() -> None:
    rng = np.random.default_rng(4)
    n = 20000
    x_b = rng.binomial(n, 0.04)  # the policy says 5 %
    log_e = float(srm_log_bayes_factor(n - x_b, x_b, 0.05, 100.0))
    assert srm_p_value(log_e) < 0.001
    assert srm_p_value(-3.0) == 1.0


@pytest.mark.parametrize(("weight", "concentration"), [(0.0, 100.0), (1.0, 100.0), (0.5, 0.0)])
def test_degenerate_parameters_are_refused(weight: float, concentration: float) -> None:
    with pytest.raises(ValueError, match=r"weight|concentration"):
        srm_log_bayes_factor(10, 10, weight, concentration)
