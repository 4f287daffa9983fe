"""The performance section of the status page says why a metric has no interval."""

from __future__ import annotations

from driftloop.feedback.intervals import metric
from driftloop.monitor.status.sections import performance


def test_a_withheld_interval_shows_its_reason_and_a_reported_one_its_bounds() -> None:
    metrics = {
        "rmse": metric(1.25, None, None, 60, "bootstrap-t", "fewer than 100 rows"),
        "mae": metric(0.5, 0.4, 0.6, 60, "normal"),
        "r2": metric(None, None, None, 2, "bootstrap-t"),
    }
    group = {"n": 60, "label_coverage": metric(0.6, 0.5, 0.7, 100, "wilson"), "metrics": metrics}
    html = str(performance({"windows": {"1h": {"versions": {"v1": {"champion": group}}}}}))
    assert "1.25 (no interval: fewer than 100 rows)" in html
    assert "0.5 [0.4, 0.6]" in html
    assert "(no interval" not in html.replace("1.25 (no interval: fewer than 100 rows)", "")
