"""The status page at ``/``: server-rendered HTML, no external assets, readable on a laptop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

import driftloop
from driftloop.monitor.api.models import describe
from driftloop.monitor.state import MonitorState, get_state
from driftloop.monitor.status import sections as sections_html
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


def model_view(
    view: dict[str, Any], extra: dict[str, list[dict[str, Any]]] | None = None
) -> dict[str, Any]:
    """What the template needs of one model; ``extra`` holds rollout decisions and triggers."""
    extra = extra or {}
    records = [
        {"version": version, "variant": variant, "records": count}
        for version, variants in view.get("records_by_version", {}).items()
        for variant, count in variants.items()
    ]
    sections = []
    for key, value in view.items():
        if key in CORE_KEYS:
            continue
        title = SECTION_TITLES.get(key, key.replace("_", " ").capitalize())
        if key in sections_html.SIMPLE:
            html = sections_html.SIMPLE[key](value)
        elif key == "rollout":
            html = sections_html.rollout(value, extra.get("decisions", []))
        elif key == "retraining":
            html = sections_html.retraining(value, extra.get("triggers", []))
        else:
            html = generic(value)
        sections.append((title, html))
    return {
        **view,
        "versions_table": table(view["versions"], ["version", "role", "url"]),
        "records_table": table(records),
        "sections": sections,
    }


def _history(session: Session, model: Model) -> dict[str, list[dict[str, Any]]]:
    """Rollout decisions and retraining triggers, which the model sections only summarise."""
    from driftloop.feedback.triggers.api import describe_trigger
    from driftloop.monitor.rollout.service import current_rollout
    from driftloop.monitor.rollout.views import decisions_json
    from driftloop.store import RetrainTrigger

    rollout = current_rollout(session, model)
    triggers = session.scalars(
        select(RetrainTrigger)
        .where(RetrainTrigger.model_id == model.id)
        .order_by(RetrainTrigger.id.desc())
        .limit(20)
    )
    return {
        "decisions": [] if rollout is None else decisions_json(session, rollout),
        "triggers": [describe_trigger(session, t) for t in triggers],
    }


def _with_role(view: dict[str, Any], role: str) -> str | None:
    return next((x["version"] for x in view["versions"] if x["role"] == role), None)


@router.get("/", response_class=HTMLResponse)
def status_page(state: MonitorState = Depends(get_state)) -> HTMLResponse:
    """Models, versions, routing, drift, quality, performance, rollouts and retraining."""
    with state.sessions() as session:
        models = session.scalars(select(Model).order_by(Model.name)).all()
        views = [
            model_view(describe(session, state, m, full=True), _history(session, m)) for m in models
        ]
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
