"""What an estimation returns: each metric's estimate with its interval, and the realized values
beside them when the window has labels."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from driftloop.errors import DriftloopError
from driftloop.scores import SCORE_PREFIX

__all__ = ["SCORE_PREFIX", "Estimate", "Estimation", "NotEstimableError"]


class NotEstimableError(DriftloopError, ValueError):
    """The model cannot be estimated: no scores logged, too few reference labels, and so on.

    The message says which, so a page or a log can show it instead of a number."""


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass(frozen=True)
class Estimate:
    """A metric's estimate and the bounds of its interval (``None`` where undefined)."""

    estimate: float | None
    lower: float | None
    upper: float | None

    def as_json(self) -> dict[str, float | None]:
        """``{"estimate", "lower", "upper"}`` with non-finite values as ``null``."""
        return {
            "estimate": _number(self.estimate),
            "lower": _number(self.lower),
            "upper": _number(self.upper),
        }

    def covers(self, value: float) -> bool:
        """Whether ``value`` lies inside the interval."""
        return (
            self.lower is not None
            and self.upper is not None
            and (self.lower <= value <= self.upper)
        )


@dataclass(frozen=True)
class Estimation:
    """Estimated metrics of one window, with the realized ones when labels were given."""

    task: str
    rows: int
    confidence: float
    metrics: dict[str, Estimate]
    realized: dict[str, float] = field(default_factory=dict)

    def error(self) -> dict[str, float]:
        """Estimate minus realized value, per metric that has both."""
        return {
            name: float(est.estimate - self.realized[name])
            for name, est in self.metrics.items()
            if est.estimate is not None
            and name in self.realized
            and math.isfinite(est.estimate)
            and math.isfinite(self.realized[name])
        }

    def as_json(self) -> dict[str, Any]:
        """The CLI's and the API's JSON shape."""
        body: dict[str, Any] = {
            "task": self.task,
            "rows": self.rows,
            "confidence": self.confidence,
            "metrics": {name: m.as_json() for name, m in self.metrics.items()},
        }
        if self.realized:
            body["realized"] = {name: _number(v) for name, v in self.realized.items()}
            body["error"] = self.error()
        return body
