"""One source of truth: the chart's rules and dashboards are those under ``dashboards/``.

``driftloop dashboards build`` copies ``dashboards/rules/*.yaml`` to ``helm/driftloop/files/rules/``
and ``dashboards/grafana/*.json`` to ``helm/driftloop/files/dashboards/``. These tests fail while
either side is empty or missing, and whenever a copy differs by a byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.helm.helm_render import CHART, ROOT, load_values, render_chart

PAIRS = [
    pytest.param(ROOT / "dashboards" / "rules", CHART / "files" / "rules", "*.yaml", id="rules"),
    pytest.param(
        ROOT / "dashboards" / "grafana", CHART / "files" / "dashboards", "*.json", id="dashboards"
    ),
]


def _files(folder: Path, pattern: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob(pattern)) if p.is_file()}


@pytest.mark.parametrize(("source", "copy", "pattern"), PAIRS)
def test_the_chart_carries_exact_copies(source: Path, copy: Path, pattern: str) -> None:
    expected = _files(source, pattern)
    actual = _files(copy, pattern)
    assert expected, f"no {pattern} in {source.relative_to(ROOT)}"
    assert actual, f"no {pattern} in {copy.relative_to(ROOT)}: run `driftloop dashboards build`"
    assert sorted(actual) == sorted(expected), "the chart and dashboards/ hold different files"
    for name, content in expected.items():
        assert content.strip(), f"{name} is empty"
        assert actual[name] == content, f"{copy.relative_to(ROOT)}/{name} differs from its source"


def test_the_rendered_objects_carry_the_sources_unchanged() -> None:
    rules = _files(ROOT / "dashboards" / "rules", "*.yaml")
    dashboards = _files(ROOT / "dashboards" / "grafana", "*.json")
    assert rules, "no dashboards/rules/*.yaml"
    assert dashboards, "no dashboards/grafana/*.json"
    values = load_values(CHART / "ci" / "monitoring-values.yaml")
    values["metrics"]["prometheusRule"]["additionalRuleLabels"] = {}
    rendered = render_chart(CHART, values)
    rendered_groups = [
        g for rule in rendered.of_kind("PrometheusRule") for g in rule["spec"]["groups"]
    ]
    source_groups = [g for text in rules.values() for g in yaml.safe_load(text)["groups"]]
    assert sorted(rendered_groups, key=lambda g: g["name"]) == sorted(
        source_groups, key=lambda g: g["name"]
    )
    bodies = {
        key: value.encode()
        for cm in rendered.of_kind("ConfigMap")
        if cm["metadata"]["labels"].get("grafana_dashboard") == "1"
        for key, value in cm["data"].items()
    }
    assert bodies == dashboards
    for body in bodies.values():
        assert json.loads(body)["uid"], "a dashboard without a fixed uid"
