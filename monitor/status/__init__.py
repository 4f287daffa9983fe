"""The status page at ``/``: server-rendered HTML, no external assets, readable on a laptop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select

import driftloop
from driftloop.monitor.api.models import describe
from driftloop.monitor.state import MonitorState, get_state
from driftloop.monitor.status.render import generic, table
from driftloop.store import Model

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
SECTION_TITLES = {
    "routing": "Routing",
    "drift": "Drift",
    "quality": "Data quality",
    "performance": "Performance by variant",
    "labels": "Labels",
    "rollout": "Rollout and decisions",
    "retraining": "Retraining triggers and deliveries",
}
CORE_KEYS = {
    "name",
    "schema",
    "schema_source",
    "versions",
    "created_at",
    "updated_at",
    "record_count",
    "records_by_version",
    "reference",
}

router = APIRouter(include_in_schema=False)


def model_view(view: dict[str, Any]) -> dict[str, Any]:
    """What the template needs of one model."""
    records = [
        {"version": version, "variant": variant, "records": count}
        for version, variants in view.get("records_by_version", {}).items()
        for variant, count in variants.items()
    ]
    sections = [
        (SECTION_TITLES.get(key, key.replace("_", " ").capitalize()), generic(value))
        for key, value in view.items()
        if key not in CORE_KEYS
    ]
    return {
        **view,
        "versions_table": table(view["versions"], ["version", "role", "url"]),
        "records_table": table(records),
        "sections": sections,
    }


def _with_role(view: dict[str, Any], role: str) -> str | None:
    return next((x["version"] for x in view["versions"] if x["role"] == role), None)


@router.get("/", response_class=HTMLResponse)
def status_page(state: MonitorState = Depends(get_state)) -> HTMLResponse:
    """Models, versions, routing, drift, quality, performance, rollouts and retraining."""
    with state.sessions() as session:
        models = session.scalars(select(Model).order_by(Model.name)).all()
        views = [model_view(describe(session, state, m, full=True)) for m in models]
    overview = table(
        [
            {
                "model": v["name"],
                "champion": next(
                    (x["version"] for x in v["versions"] if x["role"] == "champion"), None
                ),
                "challenger": next(
                    (x["version"] for x in v["versions"] if x["role"] == "challenger"), None
                ),
                "records": v["record_count"],
            }
            for v in views
        ]
    )
    html = TEMPLATES.get_template("status.html").render(
        models=views,
        overview=overview,
        version=driftloop.__version__,
        database=state.engine.url.render_as_string(hide_password=True),
        now=state.clock.now().strftime("%Y-%m-%d %H:%M:%S UTC"),
        refresh=15,
    )
    return HTMLResponse(html)


def install(app: FastAPI, state: MonitorState) -> None:
    """Serve the status page at ``/``."""
    app.include_router(router)
