"""Grafana variables are replaced the way Grafana would, for running queries on Prometheus."""

from __future__ import annotations

import pytest

from driftloop.dashboards.queries import substitute, variable_as_promql


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('rate(x{model=~"$model"}[$__rate_interval])', 'rate(x{model=~"iris"}[1m])'),
        ('x{model="${model}"}', 'x{model="iris"}'),
        ('x{model="${model:regex}"}', 'x{model="iris"}'),
        ("increase(x[$__range])", "increase(x[5m])"),
        ('x{a="$unknown"}', 'x{a="$unknown"}'),
        ('x{a="$modelx"}', 'x{a="$modelx"}'),
    ],
    ids=["rate", "braces", "format", "range", "unknown-kept", "longer-name-kept"],
)
def test_substitute(expr: str, expected: str) -> None:
    assert substitute(expr, {"model": "iris"}) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("label_values(up, job)", "group by (job) (up)"),
        ('label_values(x{model="a"}, version)', 'group by (version) (x{model="a"})'),
        ("label_values(model)", "group by (model) ({__name__=~'.+'})"),
        ("up", "up"),
    ],
)
def test_label_values_become_promql(query: str, expected: str) -> None:
    assert variable_as_promql(query) == expected
