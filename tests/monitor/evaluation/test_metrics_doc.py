"""Every metric the drift collector exports is documented, with its labels, and well named."""

from __future__ import annotations

import re
from pathlib import Path

from driftloop.monitor.evaluation import METRICS

DOC = Path(__file__).resolve().parents[3] / "docs" / "metrics.md"
ALLOWED_LABELS = {"model", "version", "variant", "feature", "method"}


def test_every_metric_is_documented_with_its_labels() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Drift and data quality", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `(driftloop_[a-z_]+)` \| gauge \| ([a-z, ]+) \|", section, re.M))
    assert set(rows) == set(METRICS)
    for name, (_doc, labels) in METRICS.items():
        assert rows[name].split(", ") == labels, name


def test_names_and_labels_follow_the_convention() -> None:
    for name, (_doc, labels) in METRICS.items():
        assert re.fullmatch(r"driftloop_[a-z]+(_[a-z]+)+", name)
        assert not name.endswith("_total")  # gauges only
        assert set(labels) <= ALLOWED_LABELS
