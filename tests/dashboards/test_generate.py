"""The committed dashboards are exactly what the code generates, and follow Grafana conventions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from driftloop.cli import app
from driftloop.dashboards import DASHBOARDS, GRAFANA_DIR, RULES_DIR, apply, generate, plan
from driftloop.dashboards.queries import dashboard_queries

GENERATED = generate()


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for panel in panels:
        out.append(panel)
        out.extend(_panels(panel.get("panels") or []))
    return out


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_the_committed_json_is_what_the_code_generates(name: str) -> None:
    committed = GRAFANA_DIR / name
    assert committed.is_file(), f"{name} is not committed: run `driftloop dashboards build`"
    assert committed.read_text() == GENERATED[name], (
        f"dashboards/grafana/{name} differs from the code: run `driftloop dashboards build`"
    )


def test_no_stray_dashboard_is_committed() -> None:
    assert {p.name for p in GRAFANA_DIR.glob("*.json")} == set(DASHBOARDS)


def test_generation_is_deterministic() -> None:
    assert generate() == GENERATED


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_each_dashboard_follows_the_conventions(name: str) -> None:
    data = json.loads(GENERATED[name])
    assert data["uid"] == name.removesuffix(".json")
    assert data["id"] is None
    assert "driftloop" in data["tags"]
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = _panels(data["panels"])
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel.get("description"), f"panel {panel['title']!r} has no description"
        refs = [t["refId"] for t in panel["targets"]]
        assert refs, panel["title"]
        assert len(refs) == len(set(refs)), panel["title"]
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == "${datasource}"


def test_every_query_names_only_variables_the_dashboard_defines() -> None:
    builtin = {"__rate_interval", "__interval", "__range"}
    for name, text in GENERATED.items():
        data = json.loads(text)
        defined = {v["name"] for v in data["templating"]["list"]} | builtin
        for query in dashboard_queries(data):
            used = {
                word
                for word in query.expr.replace("{", " ").replace("}", " ").split("$")[1:]
                for word in [word.split('"')[0].split("]")[0].split(")")[0].strip()]
            }
            assert used <= defined, f"{name} {query.panel}: undefined {used - defined}"


def test_uids_are_unique_and_short() -> None:
    uids = [json.loads(text)["uid"] for text in GENERATED.values()]
    assert len(uids) == len(set(uids))
    assert all(len(uid) <= 40 for uid in uids)


def test_build_writes_copies_and_removes_stale_files(tmp_path: Path) -> None:
    out, chart = tmp_path / "grafana", tmp_path / "files"
    (chart / "dashboards").mkdir(parents=True)
    (chart / "dashboards" / "old-dashboard.json").write_text("{}")
    apply(plan(out, chart))
    for name, text in GENERATED.items():
        assert (out / name).read_text() == text
        assert (chart / "dashboards" / name).read_bytes() == (out / name).read_bytes()
    for rule in RULES_DIR.glob("*.yaml"):
        assert (chart / "rules" / rule.name).read_bytes() == rule.read_bytes()
    assert not (chart / "dashboards" / "old-dashboard.json").exists()
    assert plan(out, chart) == []


def test_the_command_checks_and_rebuilds(tmp_path: Path) -> None:
    out, chart = tmp_path / "grafana", tmp_path / "files"
    shutil.copytree(GRAFANA_DIR, out)
    name = sorted(DASHBOARDS)[0]
    (out / name).write_text("{}\n")
    runner = CliRunner()
    args = ["dashboards", "build", "--out", str(out), "--chart-files", str(chart)]
    stale = runner.invoke(app, [*args, "--check"])
    assert stale.exit_code == 1, stale.output
    assert f"stale: {out / name}" in stale.output
    assert (out / name).read_text() == "{}\n", "--check must not write"
    built = runner.invoke(app, args)
    assert built.exit_code == 0, built.output
    assert (out / name).read_text() == GENERATED[name]
    fresh = runner.invoke(app, [*args, "--check"])
    assert fresh.exit_code == 0, fresh.output
    assert "up to date" in fresh.output


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_the_json_loads_back_into_grafana_s_dashboard_model(name: str) -> None:
    from grafana_foundation_sdk.cog import plugins
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    plugins.register_default_plugins()
    data = json.loads(GENERATED[name])
    back = json.loads(json.dumps(Dashboard.from_json(data), cls=JSONEncoder))

    def shape(d: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [
            (p["type"], p["title"], p["gridPos"], [t.get("expr") for t in p.get("targets", [])])
            for p in _panels(d["panels"])
        ]

    assert shape(back) == shape(data)
    assert back["templating"]["list"][0]["type"] == "datasource"


def test_the_estimate_and_the_realized_metric_share_a_panel_with_the_interval_as_a_band() -> None:
    data = json.loads(GENERATED["driftloop-model.json"])
    (panel,) = [p for p in _panels(data["panels"]) if p["title"] == "$metric estimated vs realized"]
    exprs = {t["legendFormat"]: t["expr"] for t in panel["targets"]}
    assert 'bound="estimate"' in exprs["{{variant}} estimated"]
    assert "driftloop_performance_value" in exprs["{{variant}} realized"]
    bands = {
        o["matcher"]["options"]: {p["id"]: p["value"] for p in o["properties"]}
        for o in panel["fieldConfig"]["overrides"]
        if o["matcher"]["id"] == "byName"
    }
    for variant in ("champion", "challenger", "shadow"):
        # The names the legend gives the bounds, so the band follows the series.
        upper, lower = f"{variant} estimated upper", f"{variant} estimated lower"
        assert bands[upper]["custom.fillBelowTo"] == lower
        assert bands[upper]["custom.fillOpacity"] > 0
