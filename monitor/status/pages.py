"""The status pages: a paginated overview at ``/`` (summary first) and a page per model at
``/models/{name}`` with server-drawn charts; both refresh their data in place (no page reload)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import driftloop
from driftloop.monitor.status import charts
from driftloop.monitor.status.histogram import feature_histogram
from driftloop.monitor.status.series import ModelSeries, load_series
from driftloop.store import DriftResult, Model, ModelVersion, RecordRow, Rollout
from driftloop.urls import redact_url
from driftloop.web.state import MonitorState, get_state

__all__ = ["PAGE_SIZE", "router"]

PAGE_SIZE = 50
ACTIVE = ("active", "paused")

router = APIRouter(include_in_schema=False)


def _templates() -> Any:
    from driftloop.monitor.status.page import TEMPLATES

    return TEMPLATES


def _header(state: MonitorState) -> dict[str, Any]:
    return {
        "version": driftloop.__version__,
        "database": redact_url(state.engine.url.render_as_string(hide_password=True)),
        "now": state.clock.now().strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


def _aware(ts: datetime | None) -> datetime | None:
    return None if ts is None else ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _ago(ts: datetime | None, now: datetime) -> str:
    if ts is None:
        return "never"
    seconds = max(0, int((now - ts).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def overview_rows(session: Session, models: list[Model], now: datetime) -> list[dict[str, Any]]:
    """One summary row per model of a page: a few grouped queries, whatever the page size."""
    ids = [m.id for m in models]
    if not ids:
        return []
    roles: dict[int, dict[str, str]] = {}
    for model_id, version, role in session.execute(
        select(ModelVersion.model_id, ModelVersion.version, ModelVersion.role).where(
            ModelVersion.model_id.in_(ids), ModelVersion.role.in_(("champion", "challenger"))
        )
    ):
        roles.setdefault(model_id, {})[role] = version
    last_seen = dict(
        session.execute(
            select(RecordRow.model_id, func.max(RecordRow.ts))
            .where(RecordRow.model_id.in_(ids))
            .group_by(RecordRow.model_id)
        ).all()
    )
    newest = select(func.max(DriftResult.id)).where(DriftResult.model_id.in_(ids))
    drift = {
        r.model_id: r
        for r in session.execute(
            select(
                DriftResult.model_id, DriftResult.dataset_drift, DriftResult.drifted_share
            ).where(DriftResult.id.in_(newest.group_by(DriftResult.model_id)))
        ).all()
    }
    rollouts = dict(
        session.execute(
            select(Rollout.model_id, Rollout.status).where(
                Rollout.model_id.in_(ids), Rollout.status.in_(ACTIVE)
            )
        ).all()
    )
    rows = []
    for m in models:
        seen = _aware(last_seen.get(m.id))
        d = drift.get(m.id)
        rows.append(
            {
                "name": m.name,
                "href": f"/models/{quote(m.name, safe='')}",
                "champion": roles.get(m.id, {}).get("champion", "–"),
                "challenger": roles.get(m.id, {}).get("challenger", "–"),
                "last_record": _ago(seen, now),
                "stale": seen is None or now - seen > timedelta(hours=1),
                "drift": None if d is None else bool(d.dataset_drift),
                "drifted_share": None if d is None else d.drifted_share,
                "rollout": rollouts.get(m.id),
            }
        )
    return rows


def _summary(session: Session) -> dict[str, int]:
    newest = select(func.max(DriftResult.id)).group_by(DriftResult.model_id)
    return {
        "models": int(session.scalar(select(func.count()).select_from(Model)) or 0),
        "drifting": int(
            session.scalar(
                select(func.count()).where(DriftResult.id.in_(newest), DriftResult.dataset_drift)
            )
            or 0
        ),
        "rollouts": int(
            session.scalar(select(func.count()).where(Rollout.status.in_(ACTIVE))) or 0
        ),
    }


@router.get("/", response_class=HTMLResponse)
def overview(
    page: int = Query(1, ge=1),
    q: str = Query("", max_length=128, description="Only models whose name contains this."),
    fragment: bool = Query(False, description="Only the data, for an in-place refresh."),
    state: MonitorState = Depends(get_state),
) -> HTMLResponse:
    """Summary first, then one page of models with their state."""
    now = state.clock.now()
    with state.sessions() as session:
        statement = select(Model).order_by(Model.name)
        counted = select(func.count()).select_from(Model)
        if q:
            statement = statement.where(Model.name.contains(q, autoescape=True))
            counted = counted.where(Model.name.contains(q, autoescape=True))
        total = int(session.scalar(counted) or 0)
        pages = max(1, -(-total // PAGE_SIZE))
        page = min(page, pages)
        models = list(session.scalars(statement.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
        rows = overview_rows(session, models, now)
        summary = _summary(session)

    def link(n: int) -> str:
        return "/?" + urlencode({k: v for k, v in {"page": n, "q": q}.items() if v})

    html = (
        _templates()
        .get_template("overview.html")
        .render(
            **_header(state),
            rows=rows,
            summary=summary,
            page=page,
            pages=pages,
            total=total,
            q=q,
            prev_link=link(page - 1) if page > 1 else None,
            next_link=link(page + 1) if page < pages else None,
            fragment=fragment,
        )
    )
    return HTMLResponse(html)


def _variants(by_variant: dict[str, dict[datetime, int]], buckets: list[datetime]) -> list[str]:
    return sorted(by_variant, key=lambda v: (v != "champion", v))


def model_charts(series: ModelSeries, name: str) -> list[Markup]:
    """Every chart of the model page, in reading order."""
    per = f" per {series.bucket_minutes} min" if series.bucket_minutes > 1 else " per minute"
    colors = {"champion": "#3656d6", "challenger": "#d9730d", "shadow": "#0f9d58"}
    traffic = [
        charts.Line(v, [(b, float(series.traffic[v].get(b, 0))) for b in series.buckets],
                    colors.get(v, ""))
        for v in _variants(series.traffic, series.buckets)
    ]  # fmt: skip
    errors = [
        charts.Line(v, [(b, float(series.errors.get(v, {}).get(b, 0))) for b in series.buckets],
                    colors.get(v, ""))
        for v in _variants(series.traffic, series.buckets)
    ]  # fmt: skip
    coverage = [
        charts.Line(
            v,
            [
                (
                    b,
                    series.labeled.get(v, {}).get(b, 0) / series.traffic[v][b]
                    if series.traffic[v].get(b)
                    else None,  # no predictions in the bucket: a gap, not 0 %
                )
                for b in series.buckets
            ],
            colors.get(v, ""),
        )
        for v in _variants(series.traffic, series.buckets)
    ]
    performance_lines = [
        charts.Line(v, [(t, value) for t, value, _, _ in points], colors.get(v, ""))
        for v, points in sorted(series.performance.items(), key=lambda x: x[0] != "champion")
        if points
    ]
    bands = [
        charts.Band(f"{v} 95% interval", [(t, lo, hi) for t, _, lo, hi in points],
                    colors.get(v, "#3656d6"))
        for v, points in series.performance.items()
        if points
    ]  # fmt: skip
    accuracy = series.metric == "accuracy"
    out = [
        charts.time_chart("traffic", f"Requests{per}, by variant", traffic, y_min=0),
        charts.time_chart(
            "errors",
            f"Errors (HTTP status ≥ 400){per}, by variant",
            errors,
            y_min=0,
        ),
        charts.heatmap(
            "drift",
            f"Drift per feature over time ({series.drift_of or 'no evaluation yet'}); "
            "click a feature for its histograms",
            series.drift_features,
            series.drift_times,
            series.drift_cells,
            link=f"/models/{quote(name, safe='')}/histogram?feature=",
        ),
        charts.time_chart(
            "performance",
            f"{series.metric.capitalize()} on labeled rows{per}, with 95% interval",
            performance_lines,
            bands=bands,
            y_min=0 if accuracy else None,
            y_max=1 if accuracy else None,
            percent=accuracy,
            empty="no labeled rows yet",
        ),
        charts.time_chart(
            "coverage",
            f"Label coverage{per}: labeled share of predictions",
            coverage,
            y_min=0,
            y_max=1,
            percent=True,
            empty="no predictions yet",
        ),
    ]
    out.append(_rollout_chart(series))
    return out


def _rollout_chart(series: ModelSeries) -> Markup:
    rollout = series.rollout
    if rollout is None:
        return charts.time_chart("rollout", "Rollout: confidence sequence", [], empty="no rollout")
    points = rollout["points"]
    margin = rollout.get("margin")
    marks = {"promote": "#137333", "rollback": "#b3261e"}
    markers = [
        charts.Marker(at, decision, f"{decision} by {actor}: {reason}", marks.get(decision, "#555"))
        for at, decision, reason, actor in rollout["decisions"]
    ]
    hlines = [(0.0, "no difference")]
    if isinstance(margin, int | float):
        hlines.append((-float(margin), f"-margin ({-float(margin):+.3g})"))
    return charts.time_chart(
        "rollout",
        f"Rollout {rollout['champion']} → {rollout['challenger']} ({rollout['status']}): "
        "difference (challenger − champion) with its confidence sequence",
        [charts.Line("estimate", [(t, est) for t, est, _, _ in points], "#121826")],
        bands=[charts.Band("confidence sequence", [(t, lo, hi) for t, _, lo, hi in points])],
        markers=markers,
        hlines=hlines,
        empty="no comparison yet",
    )


@router.get("/models/{name}", response_class=HTMLResponse)
def model_page(
    name: str,
    fragment: bool = Query(False, description="Only the data, for an in-place refresh."),
    state: MonitorState = Depends(get_state),
) -> HTMLResponse:
    """One model: charts first, then its sections (drift, quality, performance, rollout ...)."""
    from driftloop.monitor.api.models import describe
    from driftloop.monitor.status.page import _history, model_view

    with state.sessions() as session:
        model = session.scalar(select(Model).where(Model.name == name))
        if model is None:
            raise HTTPException(404, f"unknown model {name!r}")
        series = load_series(session, model)
        history = _history(state, session, model)
        view = model_view(describe(session, state, model, full=True), history)
    html = (
        _templates()
        .get_template("model.html")
        .render(
            **_header(state),
            m=view,
            charts=model_charts(series, name),
            sampled=series.sampled,
            quoted=quote(name, safe=""),
            fragment=fragment,
        )
    )
    return HTMLResponse(html)


@router.get("/models/{name}/histogram", response_class=HTMLResponse)
def histogram(
    name: str, feature: str = Query(..., max_length=512), state: MonitorState = Depends(get_state)
) -> HTMLResponse:
    """Reference against recent traffic for one feature, as an inline SVG figure."""
    with state.sessions() as session:
        model = session.scalar(select(Model).where(Model.name == name))
        if model is None:
            raise HTTPException(404, f"unknown model {name!r}")
        return HTMLResponse(str(feature_histogram(session, model, feature)))
