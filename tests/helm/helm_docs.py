"""Generate the chart's README from the ``# --`` comments in values.yaml, the helm-docs way.

helm-docs (a Go tool) is not installed here, so this reads the same comment convention: a
``# -- text`` line (continued by further ``#`` lines) documents the key below it; a documented
map is one row, an undocumented map is documented through its keys. Run
``.venv/bin/python tests/helm/helm_docs.py`` after changing values.yaml; a test fails when the
README is stale or a value has no comment.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[2] / "helm" / "driftloop"
KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.\-]+):(?P<rest>.*)$")

HEADER = """\
# {name}

Version: {version} · Type: {type} · AppVersion: {app_version}

{description}

The monitor (any number of replicas, one leader by a PostgreSQL advisory lock), its database
migrations, PostgreSQL (bundled for evaluation, or yours), and your BentoML models with the
Driftloop sidecar next to each champion, wired into kube-prometheus-stack (ServiceMonitor,
PodMonitor, PrometheusRules, Grafana dashboards).

The guide, with kube-prometheus-stack, external PostgreSQL, canary and shadow challengers and
upgrades, is `docs/kubernetes.md` in the Driftloop repository.

## Install

```console
helm install driftloop ./helm/driftloop --namespace driftloop --create-namespace \\
  --set models.iris.champion.image.repository=registry.example.com/iris \\
  --set models.iris.champion.image.tag=3
```

## Requirements

Kubernetes: `{kube_version}`

The ServiceMonitor, PodMonitor and PrometheusRule need the Prometheus Operator's CRDs (installed
by kube-prometheus-stack).

## Values

This table is generated from the comments in `values.yaml` by `tests/helm/helm_docs.py`.

| Key | Type | Default | Description |
|-----|------|---------|-------------|
"""


@dataclass(frozen=True)
class Row:
    """One documented value."""

    key: str
    type: str
    default: str
    description: str


def _lookup(values: dict[str, Any], path: list[str]) -> Any:
    node: Any = values
    for part in path:
        node = node[part]
    return node


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "string"
    return "object"


def _default(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"))
    return "`" + text.replace("|", "\\|") + "`"


def parse(values_text: str) -> tuple[list[Row], list[str]]:
    """The documented rows of a values file, and the dotted keys of undocumented values."""
    values = yaml.safe_load(values_text) or {}
    rows: list[Row] = []
    documented: set[str] = set()
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in values_text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = [stripped.removeprefix("# --").strip()]
            continue
        if stripped.startswith("#"):
            if pending is not None:
                pending.append(stripped.lstrip("#").strip())
            continue
        match = KEY_LINE.match(line)
        if not match or stripped.startswith("-"):
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = [key for _, key in stack] + [match["key"]]
        stack.append((indent, match["key"]))
        dotted = ".".join(path)
        if any(dotted.startswith(d + ".") for d in documented):
            pending = None
            continue  # inside a map documented as a whole
        if pending is not None:
            value = _lookup(values, path)
            rows.append(Row(dotted, _type(value), _default(value), " ".join(pending).strip()))
            documented.add(dotted)
            pending = None
    missing = [
        key
        for key in _leaves(values)
        if not any(key == d or key.startswith(d + ".") for d in documented)
    ]
    return rows, missing


def _leaves(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict) and node:
        out: list[str] = []
        for key, value in node.items():
            out.extend(_leaves(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return [prefix]


def render(chart: Path = CHART) -> str:
    """The README of ``chart``."""
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    rows, _ = parse((chart / "values.yaml").read_text())
    header = HEADER.format(
        name=meta["name"],
        version=meta["version"],
        type=meta["type"],
        app_version=meta["appVersion"],
        description=" ".join(meta["description"].split()),
        kube_version=meta["kubeVersion"],
    )
    table = "".join(f"| {r.key} | {r.type} | {r.default} | {r.description} |\n" for r in rows)
    return header + table


def main() -> int:
    """Write helm/driftloop/README.md; exit 1 when a value has no ``# --`` comment."""
    _, missing = parse((CHART / "values.yaml").read_text())
    if missing:
        print("undocumented values: " + ", ".join(missing), file=sys.stderr)
        return 1
    (CHART / "README.md").write_text(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
