"""Every dashboard is scoped by cluster, namespace and job, and imports from a file asking for the
Prometheus data source. (tests/dashboards/test_prometheus.py runs every scoped query against a real
Prometheus.)"""

from __future__ import annotations

import json
import re

import pytest

from driftloop.dashboards import dashboard_queries, generate
from driftloop.dashboards.scope import scope_expr

DASHBOARDS = {name: json.loads(text) for name, text in generate().items()}
SELECTOR = re.compile(r"\b((?:driftloop|process)_\w+)(\{[^}]*\})?(?!\s*\()")


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_the_scope_variables_follow_the_data_source_and_chain(name: str) -> None:
    variables = DASHBOARDS[name]["templating"]["list"]
    names = [v["name"] for v in variables]
    assert names[:4] == ["datasource", "cluster", "namespace", "job"]
    by_name = {v["name"]: v for v in variables}
    assert 'cluster=~"$cluster"' in by_name["namespace"]["definition"]
    assert 'namespace=~"$namespace"' in by_name["job"]["definition"]
    for scope in ("cluster", "namespace", "job"):
        assert by_name[scope]["includeAll"] is True
        assert by_name[scope]["allValue"] == ".*"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_driftloop_selector_is_scoped(name: str) -> None:
    queries = dashboard_queries(DASHBOARDS[name])
    assert queries
    for query in queries:
        if query.panel in ("$cluster", "$namespace", "$job"):
            continue
        for match in SELECTOR.finditer(query.expr):
            inner = match.group(2) or ""
            for label in ("cluster", "namespace", "job"):
                assert re.search(rf"\b{label}\s*(=~|=|!=|!~)", inner), (query.panel, query.expr)


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_a_file_import_asks_for_the_prometheus_data_source(name: str) -> None:
    data = DASHBOARDS[name]
    assert data["__inputs"] == [
        {
            "name": "DS_PROMETHEUS",
            "label": "Prometheus",
            "description": "The Prometheus that scrapes the Driftloop monitor and sidecars.",
            "type": "datasource",
            "pluginId": "prometheus",
            "pluginName": "Prometheus",
        }
    ]
    required = {(r["type"], r["id"]) for r in data["__requires"]}
    assert {("grafana", "grafana"), ("datasource", "prometheus")} <= required
    panel_types = {p["type"] for p in data["panels"] if p["type"] != "row"}
    assert {("panel", t) for t in panel_types} <= required
    source = next(v for v in data["templating"]["list"] if v["type"] == "datasource")
    assert source["current"]["value"] == "${DS_PROMETHEUS}"


def test_a_selector_that_names_a_scope_label_keeps_it() -> None:
    assert scope_expr('driftloop_leader{job="monitor"}') == (
        'driftloop_leader{job="monitor", cluster=~"$cluster", namespace=~"$namespace"}'
    )
    assert scope_expr("sum(rate(driftloop_records_sent_total[5m]))") == (
        'sum(rate(driftloop_records_sent_total{cluster=~"$cluster", namespace=~"$namespace", '
        'job=~"$job"}[5m]))'
    )
