"""A false-alarm budget for drift checked every minute on overlapping windows.

The drift job re-tests a window of ``W`` minutes every minute, so under no drift the statistic of
one feature moves like a moving sum of ``W`` independent minutes: a Slepian process with
correlation ``1 - |τ|/W`` between checks ``τ`` minutes apart. For such a process the chance that
one check crosses the two-sided level ``z`` upwards after the check before did not is about
``2 φ(z) / sqrt(π W)`` (the increment over one minute has standard deviation ``sqrt(2/W)``), so a
day of 1,440 checks raises about

    alarms per day ≈ 1440 · 2 φ(z) / sqrt(π W)

false alarms. The rule: the dataset verdict of the minute job (the one exported as
``driftloop_dataset_drifted`` and read by alert rules and retraining triggers) is decided at the
level ``alarm_alpha = 2 (1 - Φ(z))`` whose ``z`` makes that rate equal to the budget (default
0.25 per model-day, a quarter of the 1-per-day target, for the margin the approximation needs),
never above ``alpha``. Per-feature flags keep ``alpha``. Once raised, the alarm stays raised while
the dataset verdict holds at ``alpha`` (hysteresis), so a window hovering at the strict level
does not flicker into several alarms. For W = 60 minutes this is alpha ≈ 0.0009; a drift large
enough to be material is found at the same minute as before at the traffic of the benchmarks
(materiality, not significance, decides when); at low traffic it needs the extra evidence.
"""

from __future__ import annotations

import math
from statistics import NormalDist

__all__ = ["DAY_MINUTES", "alarm_alpha", "false_alarms_per_day", "raised"]

DAY_MINUTES = 1440
_NORMAL = NormalDist()


def false_alarms_per_day(
    z: float, window_minutes: float, checks_per_day: float = DAY_MINUTES
) -> float:
    """Expected up-crossings of the two-sided level ``z`` per day, one check a minute."""
    rate = 2.0 * _NORMAL.pdf(z) / math.sqrt(math.pi * max(window_minutes, 1.0))
    return checks_per_day * min(1.0, rate)


def alarm_alpha(alpha: float, window_minutes: float, budget_per_day: float = 0.25) -> float:
    """The level of the minute job's dataset verdict that keeps false alarms within budget."""
    if budget_per_day <= 0:
        raise ValueError(f"the false-alarm budget must be positive, got {budget_per_day}")
    lo, hi = 0.0, 40.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if false_alarms_per_day(mid, window_minutes) > budget_per_day:
            lo = mid
        else:
            hi = mid
    return min(alpha, 2.0 * (1.0 - _NORMAL.cdf(hi)))


def raised(previous: bool, alarm: bool, drifted_share: float, threshold: float) -> bool:
    """The alarm after one check: ``alarm`` (the verdict at the alarm level) raises it; once
    raised it holds while the share of features drifted at alpha still reaches ``threshold``."""
    return bool(alarm or (previous and drifted_share >= threshold))
