"""Values that cannot work are refused at install time, with a message naming the value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python
import pytest

from tests.helm.helm_render import CHART, render_chart

IRIS = {"champion": {"image": {"repository": "registry.example.com/iris"}}}
EXTERNAL = {"postgresql": {"enabled": False}}

SCHEMA_REJECTS = [
    pytest.param(
        {"imageTag": "1.0"}, "additional properties 'imageTag'", id="unknown-top-level-key"
    ),
    pytest.param(
        {"monitor": {"replicas": 3}}, "additional properties 'replicas'", id="typo-in-monitor"
    ),
    pytest.param({"monitor": {"replicaCount": -1}}, "replicaCount", id="negative-replicas"),
    pytest.param({"monitor": {"replicaCount": "2"}}, "replicaCount", id="replicas-as-string"),
    pytest.param({"monitor": {"port": 70000}}, "port", id="port-out-of-range"),
    pytest.param(
        {"monitor": {"settings": {"database_url": "postgresql://u:p@h/db"}}},
        "database_url",
        id="database-url-in-configmap-settings",
    ),
    pytest.param(
        {"monitor": {"settings": {"webhook": {"secret": "whsec_x"}}}},
        "secret",
        id="nested-secret-in-configmap-settings",
    ),
    pytest.param({"monitor": {"settings": {"TOKENS": "{}"}}}, "TOKENS", id="tokens-in-settings"),
    pytest.param({"models": {"Iris_Model": IRIS}}, "Iris_Model", id="model-name-not-a-dns-label"),
    pytest.param({"models": {"iris": {"champion": {}}}}, "image", id="model-without-image"),
    pytest.param(
        {"models": {"iris": {**IRIS, "routing": {"mode": "split"}}}},
        "mode",
        id="unknown-routing-mode",
    ),
    pytest.param(
        {"models": {"iris": {**IRIS, "routing": {"weight": 1.5}}}}, "weight", id="weight-above-one"
    ),
    pytest.param({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy", id="bad-pull-policy"),
    pytest.param({"image": {"digest": "sha256:short"}}, "digest", id="bad-digest"),
    pytest.param({"auth": {"extraTokens": {"t": ["root"]}}}, "extraTokens", id="unknown-scope"),
    pytest.param({"database": {"sslmode": "always"}}, "sslmode", id="bad-sslmode"),
    pytest.param({"database": {"url": "mysql://h/db"}}, "url", id="not-postgresql"),
    pytest.param({"webhook": {"secret": "hunter2"}}, "secret", id="webhook-secret-not-whsec"),
    pytest.param(
        {"metrics": {"serviceMonitor": {"interval": "30 seconds"}}}, "interval", id="bad-duration"
    ),
    pytest.param(
        {"monitor": {"podDisruptionBudget": {"maxUnavailable": "half"}}},
        "maxUnavailable",
        id="bad-pdb",
    ),
    pytest.param(
        {"monitor": {"ingress": {"hosts": ["https://driftloop.example.com"]}}},
        "hosts",
        id="ingress-host-with-scheme",
    ),
    pytest.param(
        {"modelDefaults": {"routing": {"stickyKey": "X-User-ID"}}},
        "stickyKey",
        id="sticky-key-without-kind",
    ),
    pytest.param(
        {"modelDefaults": {"sidecar": {"spool": {"mountPath": "spool"}}}},
        "mountPath",
        id="relative-spool-path",
    ),
]

TEMPLATE_REJECTS = [
    pytest.param(
        {"database": {"host": "pg.example.com"}},
        "set postgresql.enabled=false",
        id="external-database-while-bundled",
    ),
    pytest.param(EXTERNAL, "the monitor needs PostgreSQL", id="no-database-at-all"),
    pytest.param(
        {**EXTERNAL, "database": {"url": "postgresql://h/db", "host": "h"}},
        "only one of",
        id="two-database-sources",
    ),
    pytest.param(
        {**EXTERNAL, "database": {"host": "h", "password": "p", "passwordSecret": {"name": "s"}}},
        "either database.password",
        id="two-password-sources",
    ),
    pytest.param(
        {"models": {"iris": {**IRIS, "challenger": {"enabled": True}}}},
        "models.iris.challenger.image.repository is required",
        id="challenger-without-image",
    ),
    pytest.param(
        {
            "monitor": {"enabled": False},
            **EXTERNAL,
            "auth": {"existingSecret": "tokens"},
            "models": {"iris": IRIS},
        },
        "sidecar.monitorUrl",
        id="models-without-monitor-url",
    ),
    pytest.param(
        {
            "monitor": {"enabled": False},
            **EXTERNAL,
            "modelDefaults": {"sidecar": {"monitorUrl": "https://driftloop.example.com"}},
            "models": {"iris": IRIS},
        },
        "ingest token",
        id="models-without-monitor-token",
    ),
]


@pytest.mark.parametrize(("values", "message"), SCHEMA_REJECTS)
def test_the_schema_rejects(values: dict[str, Any], message: str) -> None:
    with helm_python.Chart.load(CHART) as chart:
        with pytest.raises(helm_python.HelmValuesError, match=message):
            chart.validate_schema(values)
        with pytest.raises(helm_python.HelmValuesError, match=message):
            chart.render(values, name="dl", namespace="ml")


@pytest.mark.parametrize(("values", "message"), TEMPLATE_REJECTS)
def test_the_templates_reject(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm_python.HelmRenderError, match=message):
        render_chart(CHART, values)


def test_monitoring_without_files_names_the_build_step(tmp_path: Path) -> None:
    """An empty files/ (before `driftloop dashboards build`) fails loudly, not silently."""
    import shutil

    chart = tmp_path / "driftloop"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("files"))
    for toggle in ("prometheusRule", "dashboards"):
        with pytest.raises(helm_python.HelmRenderError, match="driftloop dashboards build"):
            render_chart(chart, {"metrics": {toggle: {"enabled": True}}})


def test_the_schema_accepts_what_the_docs_show() -> None:
    values = {
        "postgresql": {"enabled": False},
        "database": {"existingSecret": "driftloop-db"},
        "monitor": {"settings": {"jobs": {"interval_seconds": 30}, "drift": {"alpha": 0.01}}},
        "models": {"iris-v2": {**IRIS, "routing": {"mode": "shadow", "weight": 0}}},
    }
    with helm_python.Chart.load(CHART) as chart:
        chart.validate_schema(values)
