"""Scope every dashboard to one Prometheus target set, and make the JSON importable from a file.

Two Driftloop releases (or clusters) reporting to one Prometheus would otherwise be summed into
one line. :func:`scoped` adds ``cluster``, ``namespace`` and ``job`` variables after the data
source (each chained on the one before, "All" by default, so a single-cluster setup needs no
choice) and puts ``cluster=~"$cluster", namespace=~"$namespace", job=~"$job"`` into every
selector of a Driftloop or process metric. A series without a ``cluster`` label (no federation)
still matches "All" (``.*`` matches the empty value).

It also adds ``__inputs`` / ``__requires``, so Grafana's "Import dashboard" from a file asks for
the Prometheus data source (``DS_PROMETHEUS``) and names the plugins the dashboard uses.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["SCOPE", "SCOPE_MATCHERS", "scoped"]

SCOPE = ("cluster", "namespace", "job")
"""The scope variables, outermost first."""
SCOPE_MATCHERS = {name: f'{name}=~"${name}"' for name in SCOPE}
INFO_METRIC = "driftloop_build_info"
"""Every Driftloop process exports it: the scope variables list its label values."""
GRAFANA_VERSION = "10.4.0"

_SELECTOR = re.compile(r"\b((?:driftloop|process)_[a-zA-Z0-9_]*)\b(\{[^}]*\})?(?!\s*\()")


def _matchers(existing: str, names: tuple[str, ...] = SCOPE) -> str:
    present = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", existing))
    return ", ".join(SCOPE_MATCHERS[n] for n in names if n not in present)


def scope_expr(expr: str, names: tuple[str, ...] = SCOPE) -> str:
    """``expr`` with the scope matchers added to each Driftloop / process metric selector."""

    def one(match: re.Match[str]) -> str:
        metric, braces = match.group(1), match.group(2)
        inner = braces[1:-1].strip() if braces else ""
        extra = _matchers(inner, names)
        if not extra:
            return match.group(0)
        return f"{metric}{{{inner + ', ' if inner else ''}{extra}}}"

    return _SELECTOR.sub(one, expr)


def _variable(name: str, index: int) -> dict[str, Any]:
    outer = SCOPE[:index]
    selector = scope_expr(INFO_METRIC, outer) if outer else INFO_METRIC
    query = f"label_values({selector}, {name})"
    return {
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "definition": query,
        "description": f"Prometheus {name} label of the Driftloop targets (All: every one).",
        "hide": 0,
        "includeAll": True,
        "label": name.capitalize(),
        "multi": True,
        "name": name,
        "options": [],
        "query": {
            "qryType": 1,
            "query": query,
            "refId": "PrometheusVariableQueryEditor-VariableQuery",
        },
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
        "type": "query",
    }


def _panel_types(panels: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for panel in panels:
        if panel.get("type") and panel["type"] != "row":
            out.add(panel["type"])
        out |= _panel_types(panel.get("panels") or [])
    return out


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in panels:
        out.append(panel)
        out.extend(_panels(panel.get("panels") or []))
    return out


def scoped(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a dashboard's JSON) with scope variables, scoped queries and import metadata."""
    variables = data.setdefault("templating", {}).setdefault("list", [])
    names = {v["name"] for v in variables}
    position = next((i + 1 for i, v in enumerate(variables) if v["type"] == "datasource"), 0)
    new = [_variable(name, i) for i, name in enumerate(SCOPE) if name not in names]
    for variable in variables:
        if variable["type"] != "query" or variable["name"] in SCOPE:
            continue
        query = variable["query"]
        if isinstance(query, dict):
            query["query"] = scope_expr(query["query"])
            variable["definition"] = query["query"]
        else:
            variable["query"] = variable["definition"] = scope_expr(str(query))
    variables[position:position] = new
    for panel in _panels(data.get("panels", [])):
        for target in panel.get("targets", []):
            if "expr" in target:
                target["expr"] = scope_expr(target["expr"])
    for annotation in data.get("annotations", {}).get("list", []):
        if "expr" in annotation:
            annotation["expr"] = scope_expr(annotation["expr"])
    for variable in variables:
        if variable["type"] == "datasource":
            # Asked for on import from a file; provisioning and the API keep the variable's pick.
            variable["current"] = {"selected": True, "text": "${DS_PROMETHEUS}",
                                   "value": "${DS_PROMETHEUS}"}  # fmt: skip
    data["__inputs"] = [
        {
            "name": "DS_PROMETHEUS",
            "label": "Prometheus",
            "description": "The Prometheus that scrapes the Driftloop monitor and sidecars.",
            "type": "datasource",
            "pluginId": "prometheus",
            "pluginName": "Prometheus",
        }
    ]
    data["__requires"] = [
        {"type": "grafana", "id": "grafana", "name": "Grafana", "version": GRAFANA_VERSION},
        {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
        *(
            {"type": "panel", "id": kind, "name": kind, "version": ""}
            for kind in sorted(_panel_types(data.get("panels", [])))
        ),
    ]
    return data
