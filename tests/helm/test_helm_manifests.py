"""The chart lints clean, renders with every values set, and every manifest is valid Kubernetes.

Built-in kinds are validated with kubernetes-validate's schemas (strict: unknown fields fail)
for the newest Kubernetes it knows and for the oldest the chart supports (Chart.yaml). The
Prometheus Operator kinds have no schema there: they are checked against the hand-written
schemas in ``prometheus-operator-schemas.json``, and the rules inside a PrometheusRule are
checked by ``promtool check rules``.
"""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import helm_python
import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
import pytest
import yaml

from tests.helm.helm_render import (
    CHART,
    CI_VALUES,
    KUBERNETES,
    OLDEST_KUBERNETES,
    Rendered,
    load_values,
    render_chart,
    require_tool,
    validate_kubernetes,
)

OPERATOR_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
BUILTIN_KINDS = {
    "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Ingress", "Job", "NetworkPolicy",
    "Pod", "PodDisruptionBudget", "Secret", "Service", "ServiceAccount", "StatefulSet",
}  # fmt: skip
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@cache
def _operator_schemas() -> dict[str, Any]:
    path = Path(__file__).with_name("prometheus-operator-schemas.json")
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def _validate_operator_object(manifest: dict[str, Any]) -> None:
    document = _operator_schemas()
    schema = {**document[manifest["kind"]], "definitions": document["definitions"]}
    jsonschema.Draft7Validator(schema).validate(manifest)


@pytest.mark.parametrize(
    "values_file", [None, *CI_VALUES], ids=["default", *(p.stem for p in CI_VALUES)]
)
def test_chart_lints_clean_in_strict_mode(values_file: Path | None) -> None:
    values = load_values(values_file) if values_file else None
    report = helm_python.lint(CHART, values, strict=True, kube_version=f"v{KUBERNETES}")
    assert report["messages"] == []
    assert report["total_charts_linted"] == 1


def test_every_rendered_manifest_is_valid_kubernetes(rendered: Rendered) -> None:
    assert rendered.manifests, "nothing rendered"
    for manifest, source in zip(rendered.manifests, rendered.sources, strict=True):
        kind = manifest["kind"]
        where = f"{source}: {kind}/{manifest['metadata'].get('name')}"
        if kind in OPERATOR_KINDS:
            _validate_operator_object(manifest)
            continue
        assert kind in BUILTIN_KINDS, f"{where}: no schema is known for this kind"
        for version in (KUBERNETES, OLDEST_KUBERNETES):
            try:
                validate_kubernetes(manifest, version)
            except jsonschema.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                pytest.fail(f"{where} is invalid for Kubernetes {version} at {path}: {exc.message}")


def test_names_are_unique_dns_names_in_the_release_namespace(rendered: Rendered) -> None:
    seen: set[tuple[str, str]] = set()
    for manifest in rendered.manifests:
        meta = manifest["metadata"]
        key = (manifest["kind"], meta["name"])
        assert key not in seen, f"two {key[0]} named {key[1]}"
        seen.add(key)
        assert len(meta["name"]) <= 63
        assert DNS_LABEL.match(meta["name"]), meta["name"]
        expected = rendered.values.get("metrics", {}).get("dashboards", {}).get("namespace")
        assert meta["namespace"] in {"ml", expected}
        for value in meta.get("labels", {}).values():
            assert len(str(value)) <= 63


def test_every_object_carries_the_standard_labels(rendered: Rendered) -> None:
    for manifest in rendered.manifests:
        labels = manifest["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "driftloop"
        assert labels["app.kubernetes.io/instance"] == "dl"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"


def test_prometheus_rules_pass_promtool(fixture_chart: Path, tmp_path: Path) -> None:
    values = load_values(CHART / "ci" / "monitoring-values.yaml")
    rules = render_chart(fixture_chart, values).of_kind("PrometheusRule")
    assert rules
    promtool = require_tool("promtool")
    for rule in rules:
        path = tmp_path / f"{rule['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
        result = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_a_typo_in_a_manifest_would_fail_validation(rendered: Rendered) -> None:
    """The validators are strict: the same manifests with an unknown field are rejected."""
    deployment = next(iter(rendered.of_kind("Deployment")), None)
    if deployment is None:
        pytest.skip("no Deployment in this values set")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicies"] = "Always"
    with pytest.raises(jsonschema.ValidationError, match="imagePullPolicies"):
        validate_kubernetes(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "x", "namespace": "ml"},
        "spec": {"selector": {}, "endpoints": [{"port": "http", "intervall": "30s"}]},
    }
    with pytest.raises(jsonschema.ValidationError, match="intervall"):
        _validate_operator_object(monitor)
