"""Evaluation windows end with the current minute; long ones start on a whole hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from driftloop.monitor.evaluation.job import MINUTE_BUCKETS_KEPT, previous_bounds, window_bounds

NOW = datetime(2026, 6, 30, 12, 30, 45, tzinfo=UTC)


def test_a_short_window_ends_with_the_current_minute() -> None:
    start, end = window_bounds(NOW, 60)
    assert end == datetime(2026, 6, 30, 12, 31, tzinfo=UTC)
    assert end - start == timedelta(hours=1)
    assert previous_bounds(start, end) == (start - timedelta(hours=1), start)


def test_long_windows_never_need_minute_buckets_past_their_retention() -> None:
    for minutes in (24 * 60, 24 * 60 + 7, 3 * 24 * 60 + 5, 30 * 24 * 60):
        start, end = window_bounds(NOW, minutes)
        before, _ = previous_bounds(start, end)
        if minutes > 24 * 60:
            assert start.minute == 0
        # Minute buckets are read only at unaligned edges, which are all recent enough.
        for edge in (start, before):
            assert edge.minute == 0 or NOW - edge <= MINUTE_BUCKETS_KEPT
