"""Sequential sample-ratio-mismatch test of the traffic split against the policy's weight.

The test is the Dirichlet-multinomial mixture Bayes factor of Lindon and Malek, "Anytime-valid
inference for multinomial count data" (NeurIPS 2022), specialised to two arms (a beta-binomial):

    BF_n = B(k w + x_b, k (1-w) + x_a) / B(k w, k (1-w)) / (w^x_b (1-w)^x_a)

where ``w`` is the challenger's share the policy sets, ``x_a``/``x_b`` the records each arm
answered and ``k`` the prior's concentration. Under the null (the split follows the policy) the
Bayes factor is a nonnegative martingale with mean one, so by Ville's inequality it ever exceeds
``1/alpha`` with probability at most ``alpha`` however often it is checked; ``1 / max BF`` is an
anytime-valid p-value. When the policy's weight changes (a new canary step) the test restarts on
that step's counts and the running e-value is multiplied by the finished steps' values: a product
of test martingales over consecutive, disjoint periods is again a test martingale.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betaln, xlogy

__all__ = ["srm_log_bayes_factor", "srm_p_value"]


def srm_log_bayes_factor(
    champion_count: ArrayLike, challenger_count: ArrayLike, weight: float, concentration: float
) -> Any:
    """Natural log of the mixture Bayes factor against "the split follows ``weight``"."""
    if not 0.0 < weight < 1.0:
        raise ValueError(f"the SRM test needs a weight strictly within (0, 1), got {weight!r}")
    if concentration <= 0:
        raise ValueError(f"concentration must be positive, got {concentration!r}")
    x_a = np.asarray(champion_count, dtype=float)
    x_b = np.asarray(challenger_count, dtype=float)
    prior_b, prior_a = concentration * weight, concentration * (1.0 - weight)
    marginal = betaln(prior_b + x_b, prior_a + x_a) - betaln(prior_b, prior_a)
    null = xlogy(x_b, weight) + xlogy(x_a, 1.0 - weight)
    return marginal - null


def srm_p_value(max_log_e: ArrayLike) -> Any:
    """Anytime-valid p-value from the largest log e-value seen so far."""
    return np.minimum(1.0, np.exp(-np.maximum(np.asarray(max_log_e, dtype=float), 0.0)))
