"""``POST /v1/models/{name}/layouts``: senders report the layouts they inferred per route.

A sidecar or middleware that found a route's rows without a registered layout says where, so
``GET /v1/models/{name}`` shows it under ``schema.routes`` (with ``inferred`` naming how). A
registered layout always wins: reports never replace one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from driftloop.contract import Layout, ModelName, ModelSchema
from driftloop.monitor.autoregister import ensure_models
from driftloop.settings import Scope
from driftloop.web.auth import require
from driftloop.web.state import MonitorState, get_state

router = APIRouter(tags=["models"])

MAX_ROUTES = 256
"""Routes a model's schema keeps layouts for."""


class LayoutReport(BaseModel):
    """Body of ``POST /v1/models/{name}/layouts``."""

    routes: dict[str, Layout] = Field(max_length=64)


@router.post(
    "/v1/models/{name}/layouts",
    dependencies=[Depends(require(Scope.ingest))],
    responses={422: {"description": "Not a layout report, or a model over the caps"}},
)
def post_layouts(
    name: ModelName, body: LayoutReport, state: MonitorState = Depends(get_state)
) -> dict[str, Any]:
    """Record the layouts a sender inferred; registered layouts are kept as they are."""
    now = state.clock.now()
    with state.sessions.begin() as session:
        model = ensure_models(session, {name: []}, now, state.settings.ingest)[name]
        schema = ModelSchema.model_validate(model.schema)
        declared = schema.layout is not None and schema.layout.inferred is None
        accepted = []
        for path, layout in body.routes.items():
            known = schema.routes.get(path)
            if declared or (known is not None and known.inferred is None):
                continue  # a registered layout always wins
            if known is None and len(schema.routes) >= MAX_ROUTES:
                continue
            reported = (
                layout if layout.inferred else layout.model_copy(update={"inferred": "reported"})
            )
            if known != reported:
                schema.routes[path[:500]] = reported
                accepted.append(path)
        if accepted:
            model.schema = schema.model_dump(mode="json")
            model.updated_at = now
        return {"model": name, "accepted": accepted, "schema": model.schema}
