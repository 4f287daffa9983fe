"""Windows from buckets: coverage, agreement with the raw path, cost independent of length."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftloop.monitor.drift import DriftConfig, Reference, compare_frame
from driftloop.monitor.profiles import GRAINS, ProfileLayout, profile_drift, segments

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 60 * 24 * 40), st.integers(1, 60 * 24 * 40))
def test_segments_cover_a_window_exactly_with_few_buckets(offset: int, length: int) -> None:
    start = T0 + timedelta(minutes=offset)
    end = start + timedelta(minutes=length)
    parts = segments(start, end)
    covered = sorted((lo, hi) for _, lo, hi in parts)
    assert covered[0][0] == start
    assert covered[-1][1] == end
    assert all(a[1] == b[0] for a, b in itertools.pairwise(covered))
    buckets = sum((hi - lo) // GRAINS[g] for g, lo, hi in parts)
    assert buckets <= (end - start).days + 2 * 23 + 2 * 59 + 1
    for grain, lo, hi in parts:
        assert (lo - T0) % GRAINS[grain] == timedelta(0) == (hi - T0) % GRAINS[grain]


@pytest.fixture(scope="module")
def data() -> tuple[Reference, ProfileLayout, pd.DataFrame]:
    rng = np.random.default_rng(4)
    ref = pd.DataFrame(
        {
            "a": rng.normal(0, 1, 20_000),
            "b": rng.gamma(2, 2, 20_000),
            "c": rng.choice(list("pqrs"), 20_000),
        }
    )
    reference = Reference.from_frame(ref)
    layout = ProfileLayout([reference.features[s.name] for s in reference.specs])
    cur = pd.DataFrame(
        {
            "a": rng.normal(0.3, 1, 8_000),
            "b": rng.gamma(2, 2.2, 8_000),
            "c": rng.choice(list("pqrst"), 8_000),
        }
    )
    return reference, layout, cur


def test_profiles_agree_with_raw_data_within_the_binning_error(
    data: tuple[Reference, ProfileLayout, pd.DataFrame],
) -> None:
    reference, layout, cur = data
    raw = compare_frame(reference, cur, DriftConfig())
    vector = layout.count_frame(cur)
    online = profile_drift(layout, vector, DriftConfig())
    for block, exact, binned in zip(layout.features, raw.features, online.features, strict=True):
        assert exact.drifted == binned.drifted
        assert exact.statistic is not None
        assert binned.statistic is not None
        if block.kind.value == "categorical":
            assert binned.statistic == pytest.approx(exact.statistic, rel=1e-12)
            continue
        counts = block.counts(vector)
        bound = max(
            (block.ref.counts / block.ref.counts.sum()).max(), (counts / counts.sum()).max()
        )
        assert exact.statistic - bound <= binned.statistic <= exact.statistic + 1e-12
        assert binned.effect_size == pytest.approx(exact.effect_size, rel=0.05)
        assert binned.psi == pytest.approx(exact.psi, rel=1e-9)


def test_a_window_of_many_buckets_is_their_sum(
    data: tuple[Reference, ProfileLayout, pd.DataFrame],
) -> None:
    _, layout, cur = data
    parts = [layout.count_frame(cur.iloc[i : i + 200]) for i in range(0, len(cur), 200)]
    whole = layout.count_frame(cur)
    np.testing.assert_allclose(np.sum(parts, axis=0), whole, rtol=1e-12)
    a = profile_drift(layout, np.sum(parts, axis=0), DriftConfig()).as_json()
    b = profile_drift(layout, whole, DriftConfig()).as_json()
    assert a["drifted_share"] == b["drifted_share"]
    for x, y in zip(a["features"], b["features"], strict=True):
        assert x["drifted"] == y["drifted"]
        assert x["statistic"] == pytest.approx(y["statistic"], rel=1e-9)


def test_against_the_previous_window_and_empty_windows(
    data: tuple[Reference, ProfileLayout, pd.DataFrame],
) -> None:
    _, layout, cur = data
    vector = layout.count_frame(cur)
    same = profile_drift(layout, vector, DriftConfig(), baseline=vector)
    assert not same.dataset_drift
    assert all(f.effect_size == 0 for f in same.features)
    empty = profile_drift(layout, np.zeros(layout.size), DriftConfig())
    assert {f.note for f in empty.features} == {"no values in the window"}
    assert not empty.dataset_drift
    assert empty.drifted_share == 0.0
    after_silence = profile_drift(layout, vector, DriftConfig(), baseline=np.zeros(layout.size))
    assert {f.note for f in after_silence.features} == {"no values in the previous window"}


def test_feature_overrides_apply_to_the_online_path(
    data: tuple[Reference, ProfileLayout, pd.DataFrame],
) -> None:
    _, layout, cur = data
    vector = layout.count_frame(cur)
    report = profile_drift(
        layout, vector, DriftConfig(), overrides={"a": ("psi", None), "b": (None, 5.0)}
    )
    a, b = report.feature("a"), report.feature("b")
    assert a.method == "psi"
    assert a.p_value is None
    assert a.statistic == a.psi
    assert b.method == "ks"
    assert b.materiality == 5.0
    assert not b.drifted
