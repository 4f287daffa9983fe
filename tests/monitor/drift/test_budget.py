"""The false-alarm budget of minute-by-minute checks (issue 17).

A stationary stream is checked every minute for a simulated day on a 60-minute window, exactly as
the drift job does (windows summed from per-minute profiles, ``profile_drift``, the job's
hysteresis); alarms are the rising edges of the dataset verdict. Seeded; per-minute profiles are
counted once and windows are differences of their cumulative sums.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from driftloop.monitor.drift import DriftConfig, Reference
from driftloop.monitor.drift.budget import alarm_alpha, false_alarms_per_day, raised
from driftloop.monitor.profiles import ProfileLayout, profile_drift

WINDOW = 60
Maker = Callable[[np.random.Generator, int], pd.DataFrame]


def _numbers(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": rng.normal(size=n)})


def _categories(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({"c": rng.choice(list("abcdef"), n, p=[0.3, 0.25, 0.2, 0.1, 0.1, 0.05])})


def _two_numbers(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({"x": rng.normal(shift, 1, n), "y": rng.gamma(2, 1 + shift, n)})


def _minute_vectors(
    layout: ProfileLayout, stream: pd.DataFrame, per_minute: int, total: int
) -> np.ndarray:
    """Each minute's profile. Profiles add up, so a one-column categorical stream is counted as
    (rows per value and minute) x (the profile of one row of each value), which equals counting
    each minute with ``count_frame`` (checked on the first minutes) at a fraction of the cost."""
    if list(stream.columns) != ["c"]:
        return np.stack(
            [
                layout.count_frame(stream.iloc[i * per_minute : (i + 1) * per_minute])
                for i in range(total)
            ]
        )
    values, inverse = np.unique(stream["c"].to_numpy(), return_inverse=True)
    unit = np.stack([layout.count_frame(pd.DataFrame({"c": [value]})) for value in values])
    counts = np.zeros((total, values.size))
    np.add.at(counts, (np.arange(len(stream)) // per_minute, inverse), 1.0)
    vectors = counts @ unit
    for i in range(3):
        expected = layout.count_frame(stream.iloc[i * per_minute : (i + 1) * per_minute])
        np.testing.assert_allclose(vectors[i], expected)
    return vectors


def alarms(
    rng: np.random.Generator,
    make: Maker,
    per_minute: int,
    configs: list[DriftConfig],
    *,
    minutes: int = 1440,
    drift: Maker | None = None,
    drift_at: int = 0,
) -> list[list[int]]:
    """For each config, the minutes at which an alarm was raised over ``minutes`` checks of a
    ``WINDOW`` window (one stream, counted once, decided by every config)."""
    reference = Reference.from_frame(make(rng, 5000))
    layout = ProfileLayout([reference.features[s.name] for s in reference.specs])
    total = minutes + WINDOW
    stream = make(rng, per_minute * total)
    if drift is not None:
        cut = (WINDOW + drift_at) * per_minute
        stream.iloc[cut:] = drift(rng, per_minute * total).iloc[cut:].to_numpy()
    vectors = _minute_vectors(layout, stream, per_minute, total)
    cumulative = np.vstack([np.zeros(vectors.shape[1]), np.cumsum(vectors, axis=0)])
    out: list[list[int]] = [[] for _ in configs]
    previous = [False] * len(configs)
    for t in range(minutes):
        window = cumulative[t + WINDOW] - cumulative[t]
        for i, config in enumerate(configs):
            report = profile_drift(layout, window, config)
            now = raised(
                previous[i], report.dataset_drift, report.drifted_share, config.drifted_share
            )
            if now and not previous[i]:
                out[i].append(t)
            previous[i] = now
    return out


def _job_config() -> DriftConfig:
    return DriftConfig(alarm_alpha=alarm_alpha(0.05, WINDOW))


@pytest.mark.slow
@pytest.mark.parametrize("make", [_numbers, _categories], ids=["one-number", "one-category"])
def test_a_stationary_day_of_minute_checks_stays_within_the_budget(make: Maker) -> None:
    """One feature at low traffic is the worst case: no materiality to hide behind, and the
    dataset verdict is that feature's. Before the budget: 7-8 false alarms a day."""
    rng = np.random.default_rng(2026)
    days = 2
    budget, before = [], []
    for _ in range(days):
        new, old = alarms(rng, make, 5, [_job_config(), DriftConfig()])
        budget += new
        before += old
    assert len(budget) <= days  # at most one false alarm per model-day
    # The same streams at the per-check level of before: several false alarms a day.
    assert len(before) >= 2 * days > len(budget)


def test_an_injected_drift_is_found_no_later_than_without_the_budget() -> None:
    """The benchmark's drift (+0.4 of the spread; a scale change) at its traffic level."""

    def shifted(rng: np.random.Generator, n: int) -> pd.DataFrame:
        return _two_numbers(rng, n, 0.4)

    before, after = alarms(
        np.random.default_rng(1),
        _two_numbers,
        1000,
        [DriftConfig(), _job_config()],
        minutes=120,
        drift=shifted,
        drift_at=30,
    )
    assert before
    assert after
    assert after[0] <= before[0]
    assert 30 <= after[0] <= 30 + WINDOW // 2


def test_the_alarm_level_follows_from_the_stated_rate() -> None:
    level = alarm_alpha(0.05, WINDOW)
    assert 1e-4 < level < 0.002
    z = -np.sqrt(2) * __import__("scipy").special.erfinv(level - 1)  # two-sided z of the level
    assert false_alarms_per_day(float(z), WINDOW) == pytest.approx(0.25, rel=1e-3)
    assert alarm_alpha(0.05, WINDOW, budget_per_day=1e6) == 0.05  # never above alpha
    with pytest.raises(ValueError, match="must be positive"):
        alarm_alpha(0.05, WINDOW, budget_per_day=0)


def test_a_raised_alarm_holds_while_the_lenient_verdict_holds() -> None:
    assert raised(False, True, 0.5, 0.5)
    assert not raised(False, False, 1.0, 0.5)  # the strict level raises, not the lenient one
    assert raised(True, False, 0.5, 0.5)
    assert not raised(True, False, 0.4, 0.5)
