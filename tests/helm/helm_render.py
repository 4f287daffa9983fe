"""Render the Driftloop chart with Helm's own Go SDK (``helm_python``) and read the output.

The chart's ``files/rules`` and ``files/dashboards`` are filled by ``driftloop dashboards build``
(another component). Template tests must not depend on that delivery, so they render a copy of
the chart in a temporary directory whose ``files/`` holds the small fixtures in
``tests/helm/fixtures/``; ``test_helm_sources.py`` checks the real files against ``dashboards/``.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python
import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "driftloop"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CI_VALUES = sorted(CHART.glob("ci/*-values.yaml"))
RELEASE = "dl"
NAMESPACE = "ml"


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that rejects duplicate mapping keys (the API server's strict decoding does)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def load_documents(text: str) -> list[dict[str, Any]]:
    """Parse a rendered template into its non-empty documents, refusing duplicate keys."""
    return [doc for doc in yaml.load_all(text, Loader=_UniqueKeyLoader) if doc]


def load_values(path: Path) -> dict[str, Any]:
    """Read a values file."""
    return yaml.safe_load(path.read_text()) or {}


@dataclass
class Rendered:
    """The manifests of one render, with lookups by kind and name."""

    values: dict[str, Any]
    templates: dict[str, str]
    manifests: list[dict[str, Any]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for path, text in sorted(self.templates.items()):
            if path.endswith("NOTES.txt"):
                continue
            for doc in load_documents(text):
                self.manifests.append(doc)
                self.sources.append(path)

    @property
    def notes(self) -> str:
        """The rendered NOTES.txt."""
        return next(t for p, t in self.templates.items() if p.endswith("NOTES.txt"))

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """Every manifest of ``kind``."""
        return [m for m in self.manifests if m["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """The one manifest of ``kind`` named ``name``."""
        found = [m for m in self.of_kind(kind) if m["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: found {len(found)}"
        return found[0]

    def workloads(self) -> list[dict[str, Any]]:
        """Deployments, StatefulSets and Jobs."""
        return [m for m in self.manifests if m["kind"] in {"Deployment", "StatefulSet", "Job"}]

    def secret_data(self) -> dict[str, dict[str, str]]:
        """Decoded data of every rendered Secret, by Secret name."""
        import base64

        out: dict[str, dict[str, str]] = {}
        for secret in self.of_kind("Secret"):
            data = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
            data.update(secret.get("stringData", {}))
            out[secret["metadata"]["name"]] = data
        return out


def render_chart(chart_dir: Path, values: dict[str, Any] | None = None) -> Rendered:
    """Render ``chart_dir`` offline as release ``dl`` in namespace ``ml``."""
    with helm_python.Chart.load(chart_dir) as chart:
        templates = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE)
    return Rendered(values=values or {}, templates=templates)


def chart_with_fixtures(destination: Path) -> Path:
    """Copy the chart to ``destination`` with the fixture rules and dashboards in ``files/``."""
    chart = destination / "driftloop"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("files"))
    shutil.copytree(FIXTURES / "rules", chart / "files" / "rules")
    shutil.copytree(FIXTURES / "dashboards", chart / "files" / "dashboards")
    return chart


def require_tool(name: str) -> str:
    """Path of a command-line tool; skip when missing, but fail under ``CI=true``."""
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{name} is required under CI=true but is not on PATH")
    pytest.skip(f"{name} is not installed")


KUBERNETES = kubernetes_validate.utils.latest_version()
# The oldest Kubernetes the chart claims (Chart.yaml kubeVersion ">=1.25.0-0").
OLDEST_KUBERNETES = re.sub(
    r"^>=\s*([0-9.]+).*$", r"\1", yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
)


@functools.cache
def _kubernetes_validator(kind: str, api_version: str, version: str) -> Any:
    """kubernetes-validate's strict schema for one kind, compiled once per session.

    ``kubernetes_validate.validate`` re-reads the 1.8 MB definitions file on every call; this is
    the same schema and registry, built once.
    """
    from referencing import Registry, Resource

    folder = f"kubernetes-json-schema/v{version}-local-strict"
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = kubernetes_validate.utils.schema_contents(
        f"{folder}/{kind.lower()}-{group}.json", version
    )
    definitions = kubernetes_validate.utils.schema_contents(f"{folder}/_definitions.json", version)
    registry = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(definitions) @ registry
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def validate_kubernetes(manifest: dict[str, Any], version: str = KUBERNETES) -> None:
    """Validate a built-in object strictly against a Kubernetes version (default: the newest
    kubernetes-validate knows). Raises ``jsonschema.ValidationError`` naming the offending path.
    """
    _kubernetes_validator(manifest["kind"], manifest["apiVersion"], version).validate(manifest)
