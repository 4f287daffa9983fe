"""The Prometheus collector of live performance: metric families from the latest results.

Scrapes never compute: they read what the leader's periodic job stored (see ``results``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from driftloop.feedback.performance import LATENCY_BUCKETS
from driftloop.feedback.results import LatestResults

GROUP = ["model", "version", "variant", "window"]
PERF = [*GROUP, "metric", "class"]
SEGMENT = [*GROUP, "metric", "feature", "segment"]


def _groups(results: dict[str, dict[str, Any]]) -> Iterator[tuple[list[str], dict[str, Any]]]:
    for model, result in sorted(results.items()):
        for window, evaluated in result.get("windows", {}).items():
            for version, variants in evaluated.get("versions", {}).items():
                for variant, group in variants.items():
                    yield [model, version, variant, window], group


class PerformanceCollector(Collector):
    """Yields ``driftloop_performance_*``, ``driftloop_label_*`` from the latest results."""

    def __init__(self, latest: LatestResults) -> None:
        self.latest = latest
        self._cached: tuple[int, list[Metric]] | None = None

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: describing must not query the database at registration."""
        return []

    def collect(self) -> Iterable[Metric]:
        """The metric families of the latest results, built once per change of the results
        (a scrape of 1,000 models otherwise spends most of its time rebuilding them)."""
        version = self.latest.version  # read first: a reload in current() makes it stale
        results, pending = self.latest.current()
        cached = self._cached
        if cached is not None and cached[0] == version and version == self.latest.version:
            yield from cached[1]
            return
        families = list(self._families(results, pending))
        self._cached = (version, families)
        yield from families

    def _families(self, results: dict[str, dict[str, Any]], pending: int) -> Iterator[Metric]:
        value = GaugeMetricFamily(
            "driftloop_performance_value",
            "Live model performance on labeled predictions (class='' for whole-model metrics).",
            labels=PERF,
        )
        lower = GaugeMetricFamily(
            "driftloop_performance_lower",
            "Lower bound of the metric's confidence interval.",
            labels=PERF,
        )
        upper = GaugeMetricFamily(
            "driftloop_performance_upper",
            "Upper bound of the metric's confidence interval.",
            labels=PERF,
        )
        samples = GaugeMetricFamily(
            "driftloop_performance_samples", "Labeled rows the metric is computed on.", labels=PERF
        )
        coverage = GaugeMetricFamily(
            "driftloop_label_coverage_ratio",
            "Share of predictions that have a label.",
            labels=GROUP,
        )
        latency = HistogramMetricFamily(
            "driftloop_label_latency_seconds", "Time from prediction to label.", labels=GROUP
        )
        seg_value = GaugeMetricFamily(
            "driftloop_performance_segment_value",
            "Primary metric (accuracy or MAE) per segment of a segment feature.",
            labels=SEGMENT,
        )
        seg_samples = GaugeMetricFamily(
            "driftloop_performance_segment_samples", "Labeled rows per segment.", labels=SEGMENT
        )
        gap = GaugeMetricFamily(
            "driftloop_performance_segment_gap",
            "Best minus worst segment of a feature (segments with enough rows), absolute.",
            labels=[*GROUP, "metric", "feature"],
        )
        gap_bounds = {
            side: GaugeMetricFamily(
                f"driftloop_performance_segment_gap_{side}",
                f"{side.capitalize()} bound of the segment gap's interval (Bonferroni over pairs).",
                labels=[*GROUP, "metric", "feature"],
            )
            for side in ("lower", "upper")
        }
        for labels, group in _groups(results):
            for name, m in group.get("metrics", {}).items():
                self._add(value, lower, upper, samples, [*labels, name, ""], m)
            for cls, figures in group.get("per_class", {}).items():
                for name in ("precision", "recall", "f1"):
                    self._add(value, lower, upper, samples, [*labels, name, cls], figures[name])
            share = group.get("label_coverage", {}).get("value")
            if share is not None:
                coverage.add_metric(labels, share)
            histogram = group.get("label_latency_seconds", {})
            if histogram.get("count"):  # no labels in the window: no 16 empty series
                buckets = [
                    (str(b), histogram.get("buckets", {}).get(str(b), 0)) for b in LATENCY_BUCKETS
                ]
                buckets.append(("+Inf", histogram.get("count", 0)))
                latency.add_metric(labels, buckets, histogram.get("sum", 0.0))
            for feature, view in group.get("segments", {}).items():
                metric_name = view["metric"]
                for segment, m in view["segments"].items():
                    seg_labels = [*labels, metric_name, feature, segment]
                    if m["value"] is not None:
                        seg_value.add_metric(seg_labels, m["value"])
                    seg_samples.add_metric(seg_labels, m["n"])
                if view.get("gap"):
                    gap.add_metric([*labels, metric_name, feature], view["gap"]["value"])
                    for side, family in gap_bounds.items():
                        if view["gap"].get(side) is not None:
                            family.add_metric([*labels, metric_name, feature], view["gap"][side])
        computed = GaugeMetricFamily(
            "driftloop_performance_computed_timestamp_seconds",
            "When the live performance of a model was last computed (Unix time).",
            labels=["model"],
        )
        for model, result in sorted(results.items()):
            stamp = result.get("computed_at")
            if stamp:
                computed.add_metric([model], datetime.fromisoformat(stamp).timestamp())
        waiting = GaugeMetricFamily(
            "driftloop_feedback_pending_labels",
            "Labels whose request id no record has shown yet.",
            value=pending,
        )
        yield from (value, lower, upper, samples, coverage, latency, seg_value, seg_samples, gap)
        yield from gap_bounds.values()
        yield from (computed, waiting)

    @staticmethod
    def _add(
        value: GaugeMetricFamily,
        lower: GaugeMetricFamily,
        upper: GaugeMetricFamily,
        samples: GaugeMetricFamily,
        labels: list[str],
        m: dict[str, Any],
    ) -> None:
        if m.get("value") is not None:
            value.add_metric(labels, m["value"])
        if m.get("lower") is not None:
            lower.add_metric(labels, m["lower"])
        if m.get("upper") is not None:
            upper.add_metric(labels, m["upper"])
        if m.get("n") or m.get("value") is not None:  # series only for metrics with data
            samples.add_metric(labels, m.get("n", 0))
