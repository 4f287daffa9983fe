"""The status page: the model table and each model's sections, rendered from templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from driftloop.monitor.status import sections as sections_html
from driftloop.monitor.status.render import generic, table
from driftloop.store import Model
from driftloop.web.state import MonitorState

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
ESTIMATED_TITLE = "Estimated vs realized performance"
"""The section of ``performance.estimated``: estimates before labels, reconciled after."""
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

__all__ = ["install", "model_view", "router"]

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
        if key == "performance" and isinstance(value, dict) and "estimated" in value:
            # Realized first; the estimate (before labels) gets a section of its own below it.
            sections.append((title, sections_html.performance(value)))
            title, html = ESTIMATED_TITLE, sections_html.estimated(value["estimated"])
        elif key in sections_html.SIMPLE:
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


def _history(
    state: MonitorState, session: Session, model: Model
) -> dict[str, list[dict[str, Any]]]:
    """Rollout decisions and retraining triggers, which the model sections only summarise; each
    kind comes from the component that owns it (``state.model_history``)."""
    return {kind: history(session, model) for kind, history in state.model_history.items()}


def install(app: FastAPI, state: MonitorState) -> None:
    """Serve the status pages: the overview at ``/`` and one page per model."""
    from driftloop.monitor.status.pages import router as pages

    app.include_router(router)
    app.include_router(pages)
