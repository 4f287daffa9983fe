"""Every PromQL query a dashboard runs, with Grafana's variables replaced for a plain Prometheus.

Tests use this to run each panel's query against a real Prometheus; a person can use it to paste a
panel's query into Prometheus' own UI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

GRAFANA_DEFAULTS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "5m",
    # The scope variables (dashboards/scope.py) default to "All".
    "cluster": ".*",
    "namespace": ".*",
    "job": ".*",
}
_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


@dataclass(frozen=True)
class PanelQuery:
    """One query of a dashboard: where it is (panel title, refId) and its PromQL."""

    dashboard: str
    panel: str
    ref: str
    expr: str
    kind: str  # "panel", "variable" or "annotation"


def substitute(expr: str, values: dict[str, str]) -> str:
    """``expr`` with ``$name`` / ``${name}`` replaced from ``values`` and Grafana's defaults."""
    table = {**GRAFANA_DEFAULTS, **values}

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return table.get(name, match.group(0))

    return _VARIABLE.sub(one, expr)


def variable_as_promql(query: str) -> str:
    """A ``label_values(selector, label)`` variable query as PromQL returning those values."""
    match = _LABEL_VALUES.match(query.strip())
    if match is None:
        return query
    selector = match.group("selector") or "{__name__=~'.+'}"
    return f"group by ({match.group('label')}) ({selector})"


def dashboard_queries(data: dict[str, Any]) -> list[PanelQuery]:
    """Every query of ``data`` (a dashboard's JSON): panels, variables and annotations."""
    title = str(data.get("title"))
    out: list[PanelQuery] = []
    for panel in _panels(data.get("panels", [])):
        for target in panel.get("targets", []):
            if "expr" in target:
                out.append(
                    PanelQuery(title, str(panel["title"]), target["refId"], target["expr"], "panel")
                )
    for variable in data.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else str(query)
            out.append(
                PanelQuery(
                    title, f"${variable['name']}", "var", variable_as_promql(text), "variable"
                )
            )
    for annotation in data.get("annotations", {}).get("list", []):
        if "expr" in annotation:
            out.append(
                PanelQuery(
                    title, str(annotation["name"]), "annotation", annotation["expr"], "annotation"
                )
            )
    return out


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in panels:
        out.append(panel)
        out.extend(_panels(panel.get("panels") or []))
    return out
