"""Performance before the labels arrive: CBPE for classifiers, DLE for regressors, per window.

Pure functions over NumPy arrays and DataFrames (no web stack, no database), used by the monitor's
estimation job and by ``driftloop estimate``.
"""

from typing import TYPE_CHECKING

from driftloop._lazy import lazy_exports

if TYPE_CHECKING:
    from driftloop.monitor.estimation.cbpe import ClassificationEstimator, sorted_classes
    from driftloop.monitor.estimation.dle import RegressionEstimator
    from driftloop.monitor.estimation.result import (
        SCORE_PREFIX,
        Estimate,
        Estimation,
        NotEstimableError,
    )

__all__ = [
    "SCORE_PREFIX",
    "ClassificationEstimator",
    "Estimate",
    "Estimation",
    "NotEstimableError",
    "RegressionEstimator",
    "sorted_classes",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "driftloop.monitor.estimation.cbpe": ("ClassificationEstimator", "sorted_classes"),
        "driftloop.monitor.estimation.dle": ("RegressionEstimator",),
        "driftloop.monitor.estimation.result": (
            "SCORE_PREFIX",
            "Estimate",
            "Estimation",
            "NotEstimableError",
        ),
    },
)
