"""Small constructors over grafana-foundation-sdk that give every Driftloop panel the same habits.

Every panel reads the dashboard's ``${datasource}`` variable, every time series has a table legend
with the last and max values, every stat reduces to the last non-null value, and every query
carries an explicit ``refId`` so the generated JSON is stable.
"""

from __future__ import annotations

from dataclasses import dataclass

from driftloop.extras import needs_extra

with needs_extra("dashboards", "generating the Grafana dashboards"):
    from grafana_foundation_sdk.builders import common as cb
    from grafana_foundation_sdk.builders import dashboard as db
    from grafana_foundation_sdk.builders import prometheus as prom
    from grafana_foundation_sdk.builders import stat as statb
    from grafana_foundation_sdk.builders import statetimeline
    from grafana_foundation_sdk.builders import table as tableb
    from grafana_foundation_sdk.builders import timeseries as tsb
    from grafana_foundation_sdk.models import common as cm
    from grafana_foundation_sdk.models import dashboard as dm

Item = tsb.Panel | statb.Panel | tableb.Panel | statetimeline.Panel | db.Row
"""Something a dashboard section adds: a panel, or a row header."""

DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
"""Every panel and variable queries the data source chosen in the ``datasource`` variable."""

GREEN, YELLOW, RED, BLUE = "green", "yellow", "red", "blue"


@dataclass(frozen=True)
class Q:
    """One PromQL query of a panel with its legend; ``instant`` for tables and stats."""

    expr: str
    legend: str = ""
    instant: bool = False


def _target(query: Q, ref: str, *, table: bool = False) -> prom.Dataquery:
    target = prom.Dataquery().expr(query.expr).ref_id(ref)
    if query.legend:
        target = target.legend_format(query.legend)
    target = target.instant() if query.instant or table else target.range()
    if table:
        target = target.format("table")  # type: ignore[arg-type]
    return target


def _refs(n: int) -> list[str]:
    return [chr(ord("A") + i) for i in range(n)]


def steps(*pairs: tuple[float | None, str]) -> db.ThresholdsConfig:
    """Absolute thresholds; the first pair's value is ``None`` (the base colour)."""
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=v, color=c) for v, c in pairs])
    )


def timeseries(
    title: str,
    description: str,
    queries: list[Q],
    *,
    unit: str = "short",
    width: int = 12,
    height: int = 8,
    stack: bool = False,
    min_value: float | None = None,
    max_value: float | None = None,
    thresholds: db.ThresholdsConfig | None = None,
    bounds: bool = False,
    bands: dict[str, str] | None = None,
) -> tsb.Panel:
    """A time series with a table legend (mean, last, max) and a shared tooltip.

    ``bounds`` draws series whose name ends in ``lower`` or ``upper`` (interval bounds) dashed
    and unfilled, so the estimate stands out between them. ``bands`` maps the name of an upper
    bound series to its lower one: the area between them is shaded (an interval band).
    """
    panel = (
        tsb.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .line_width(1)
        .fill_opacity(10)
        .show_points(cm.VisibilityMode.NEVER)
        .span_nulls(False)
        .legend(
            cb.VizLegendOptions()
            .display_mode(cm.LegendDisplayMode.TABLE)
            .placement(cm.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["mean", "lastNotNull", "max"])
        )
        .tooltip(
            cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING)
        )
    )
    if stack:
        panel = panel.stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL)).fill_opacity(40)
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    if thresholds is not None:
        panel = panel.thresholds(thresholds).thresholds_style(
            cb.GraphThresholdsStyleConfig().mode(cm.GraphTresholdsStyleMode.DASHED)
        )
    if bounds:
        panel = panel.override_by_regexp(
            "(^|.* )(lower|upper)$",
            [
                dm.DynamicConfigValue(
                    id_val="custom.lineStyle", value={"fill": "dash", "dash": [6, 4]}
                ),
                dm.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
            ],
        )
    for upper, lower in (bands or {}).items():
        panel = panel.override_by_name(
            upper,
            [
                dm.DynamicConfigValue(id_val="custom.fillBelowTo", value=lower),
                dm.DynamicConfigValue(id_val="custom.fillOpacity", value=15),
            ],
        )
    for query, ref in zip(queries, _refs(len(queries)), strict=True):
        panel = panel.with_target(_target(query, ref))
    return panel


def stat(
    title: str,
    description: str,
    queries: list[Q],
    *,
    unit: str = "short",
    width: int = 6,
    height: int = 4,
    thresholds: db.ThresholdsConfig | None = None,
    mappings: list[dm.ValueMapping] | None = None,
    graph: bool = True,
) -> statb.Panel:
    """A big number (last non-null value), coloured by its thresholds."""
    panel = (
        statb.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .graph_mode(cm.BigValueGraphMode.AREA if graph else cm.BigValueGraphMode.NONE)
        .color_mode(cm.BigValueColorMode.BACKGROUND if thresholds else cm.BigValueColorMode.VALUE)
        .text_mode(cm.BigValueTextMode.AUTO)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(thresholds or steps((None, BLUE)))
    )
    if mappings:
        panel = panel.mappings(mappings)
    for query, ref in zip(queries, _refs(len(queries)), strict=True):
        panel = panel.with_target(_target(query, ref))
    return panel


def table(
    title: str,
    description: str,
    queries: list[Q],
    *,
    width: int = 24,
    height: int = 8,
    unit: str = "short",
    hide: tuple[str, ...] = ("Time",),
    rename: dict[str, str] | None = None,
    thresholds: db.ThresholdsConfig | None = None,
) -> tableb.Panel:
    """A table of instant queries, merged on their labels, with unwanted columns hidden."""
    panel = (
        tableb.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .show_header(True)
        .cell_height(cm.TableCellHeight.SM)
    )
    if thresholds is not None:
        panel = panel.thresholds(thresholds)
    for query, ref in zip(queries, _refs(len(queries)), strict=True):
        panel = panel.with_target(_target(query, ref, table=True))
    if len(queries) > 1:
        panel = panel.with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
    return panel.with_transformation(
        dm.DataTransformerConfig(
            id_val="organize",
            options={
                "excludeByName": dict.fromkeys(hide, True),
                "renameByName": rename or {},
            },
        )
    )


def state_timeline(
    title: str,
    description: str,
    queries: list[Q],
    *,
    mappings: list[dm.ValueMapping],
    width: int = 24,
    height: int = 6,
) -> statetimeline.Panel:
    """A state timeline (rollout state, drift flag) with the states named by value mappings."""
    panel = (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .span(width)
        .height(height)
        .show_value(cm.VisibilityMode.AUTO)
        .merge_values(True)
        .mappings(mappings)
        .thresholds(steps((None, BLUE)))
        .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
    )
    for query, ref in zip(queries, _refs(len(queries)), strict=True):
        panel = panel.with_target(_target(query, ref))
    return panel


def value_names(names: dict[int, tuple[str, str]]) -> list[dm.ValueMapping]:
    """Value mappings from numbers to (text, colour)."""
    return [
        dm.ValueMap(
            options={
                str(value): dm.ValueMappingResult(text=text, color=color, index=i)
                for i, (value, (text, color)) in enumerate(sorted(names.items()))
            }
        )
    ]


def datasource_variable() -> db.DatasourceVariable:
    """The ``datasource`` variable every Driftloop dashboard starts with."""
    return (
        db.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .current(dm.VariableOption(selected=True, text="Prometheus", value="prometheus"))
    )


def query_variable(
    name: str, label: str, query: str, *, multi: bool = True, include_all: bool = True
) -> db.QueryVariable:
    """A variable filled from ``label_values(...)`` on the chosen data source."""
    variable = (
        db.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
        .multi(multi)
        .include_all(include_all)
    )
    if include_all:
        variable = variable.all_value(".*")
    return variable


def add(dashboard: db.Dashboard, items: list[Item]) -> db.Dashboard:
    """``dashboard`` with ``items`` appended in order (rows as rows, panels as panels)."""
    for item in items:
        dashboard = (
            dashboard.with_row(item) if isinstance(item, db.Row) else dashboard.with_panel(item)
        )
    return dashboard


def row(title: str) -> db.Row:
    """A row header."""
    return db.Row(title)


def base(uid: str, title: str, description: str, tags: list[str]) -> db.Dashboard:
    """A dashboard with Driftloop's defaults: browser time zone, last 6 hours, 30 s refresh."""
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["driftloop", *tags])
        .editable()
        .timezone("browser")
        .time("now-6h", "now")
        .refresh("30s")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .timepicker(db.TimePicker().refresh_intervals(["10s", "30s", "1m", "5m", "15m", "1h"]))
        .with_variable(datasource_variable())
    )


def dashboard_links() -> db.DashboardLink:
    """A drop-down of every Driftloop dashboard, keeping time range and variables."""
    return (
        db.DashboardLink("Driftloop")
        .type(dm.DashboardLinkType.DASHBOARDS)
        .tags(["driftloop"])
        .as_dropdown(True)
        .include_vars(True)
        .keep_time(True)
    )
