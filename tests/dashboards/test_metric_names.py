"""Dashboards and alert rules read only metrics the components declare and document."""

from __future__ import annotations

import json
import re

import pytest

from driftloop.dashboards import dashboard_queries, generate
from tests.dashboards.names import BUILTIN, declared, documented, exported, rule_exprs, used_in


def _used() -> dict[str, set[str]]:
    """Metric name -> where it is read (dashboard panel or alert)."""
    out: dict[str, set[str]] = {}
    for text in generate().values():
        for query in dashboard_queries(json.loads(text)):
            for name in used_in(query.expr):
                out.setdefault(name, set()).add(f"{query.dashboard} / {query.panel}")
    for alert, expr in rule_exprs().items():
        for name in used_in(expr):
            out.setdefault(name, set()).add(f"alert {alert}")
    return out


USED = _used()
DECLARED = declared()
DOCS = documented()


def _family(name: str) -> str:
    return re.sub(r"_(bucket|sum|count)$", "", name)


def _param(name: str) -> object:
    if name in BUILTIN or f"`{_family(name)}`" in DOCS or f"`{name}`" in DOCS:
        return pytest.param(name, id=name)
    return pytest.param(
        name,
        id=name,
        marks=pytest.mark.xfail(reason=f"{name} is not documented in docs/metrics.md yet"),
    )


@pytest.mark.parametrize("name", sorted(USED))
def test_every_metric_read_is_declared_by_a_component(name: str) -> None:
    assert exported(name, DECLARED), f"{name} (read by {sorted(USED[name])}) is declared nowhere"


@pytest.mark.parametrize("name", [_param(n) for n in sorted(USED)])
def test_every_metric_read_is_documented(name: str) -> None:
    assert name in BUILTIN or f"`{_family(name)}`" in DOCS or f"`{name}`" in DOCS


def test_the_name_parser_ignores_labels_and_functions() -> None:
    expr = (
        'sum by (model) (rate(driftloop_a_total{model=~"driftloop_x"}[1m])) '
        "* on (job, instance) group_left (component) driftloop_build_info"
    )
    assert used_in(expr) == {"driftloop_a_total", "driftloop_build_info"}
