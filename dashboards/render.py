"""Turn a dashboard builder into the JSON Grafana imports: stable ids, annotations, sorted keys.

The SDK leaves a few things to the caller: panel ids, the built-in annotation, and fields that only
make sense for some variable types. This module fills and trims them so the committed JSON is
byte-for-byte reproducible and reads like a dashboard exported from Grafana.
"""

from __future__ import annotations

import json
from typing import Any

from driftloop.extras import needs_extra

with needs_extra("dashboards", "generating the Grafana dashboards"):
    from grafana_foundation_sdk.builders import dashboard as db
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

BUILT_IN_ANNOTATION: dict[str, Any] = {
    "builtIn": 1,
    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
    "enable": True,
    "hide": True,
    "iconColor": "rgba(0, 211, 255, 1)",
    "name": "Annotations & Alerts",
    "type": "dashboard",
}

_VARIABLE_ONLY = {"interval": {"auto", "auto_count", "auto_min"}}


def prometheus_annotation(
    name: str, expr: str, title: str, text: str, color: str
) -> dict[str, Any]:
    """An annotation drawn wherever ``expr`` returns a value (for example a rollout decision)."""
    return {
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "enable": True,
        "expr": expr,
        "hide": False,
        "iconColor": color,
        "name": name,
        "step": "1m",
        "tagKeys": "model,decision",
        "textFormat": text,
        "titleFormat": title,
        "useValueForTime": False,
    }


def to_dict(
    builder: db.Dashboard, annotations: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The dashboard as a plain dict, ready for ``json.dumps`` and Grafana's import."""
    data: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    data["annotations"] = {"list": [BUILT_IN_ANNOTATION, *(annotations or [])]}
    data["id"] = None
    data["version"] = 1
    data["schemaVersion"] = 39
    data.pop("style", None)
    _layout(data["panels"])
    for number, panel in enumerate(_walk(data["panels"]), start=1):
        panel["id"] = number
        if panel.get("options") is None and panel.get("type") != "row":
            panel["options"] = {}
        panel.pop("repeatDirection", None)
    for variable in data.get("templating", {}).get("list", []):
        variable.pop("id", None)
        if variable["type"] == "query":
            # Grafana shows and migrates a classic label_values() query from ``definition``.
            variable["definition"] = variable["query"]
        for key in {"auto", "auto_count", "auto_min"} - _VARIABLE_ONLY.get(variable["type"], set()):
            variable.pop(key, None)
    from driftloop.dashboards.scope import scoped

    return scoped(data)


def to_json(data: dict[str, Any]) -> str:
    """Pretty-printed JSON with sorted keys and a final newline: stable in git diffs."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _layout(panels: list[dict[str, Any]]) -> None:
    """Flow the panels left to right on Grafana's 24-column grid, wrapping when a row is full."""
    x = y = line_height = 0
    for panel in panels:
        pos = panel["gridPos"]
        if panel.get("type") == "row" or x + pos["w"] > 24:
            x, y, line_height = 0, y + line_height, 0
        pos["x"], pos["y"] = x, y
        if panel.get("type") == "row":
            y += pos["h"]
            continue
        x += pos["w"]
        line_height = max(line_height, pos["h"])


def _walk(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in panels:
        out.append(panel)
        out.extend(_walk(panel.get("panels") or []))
    return out
