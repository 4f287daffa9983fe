"""Liveness, readiness and the Prometheus exposition."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from driftloop.store import is_current
from driftloop.store.engine import reader
from driftloop.store.errors import failure_name
from driftloop.web.metrics import metrics_response
from driftloop.web.state import MonitorState, get_state
from driftloop.web.unavailable import unavailable_response

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"description": "Database unreachable or not migrated; Retry-After says when"}},
)
def readyz(state: MonitorState = Depends(get_state)) -> JSONResponse:
    """The database answers and is migrated to the code's schema."""
    engine = reader(state.engine)  # never waits for SQLite's write lock held by a job
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        migrated = is_current(engine)
    except SQLAlchemyError as exc:
        # The same answer as a write would get: not ready until the database is back, which the
        # pool notices by itself (no restart).
        cause = failure_name(exc)
        return unavailable_response(cause, status="unavailable", database=cause)
    if not migrated:
        upgrade = "not migrated: run `driftloop db upgrade`"
        return unavailable_response("not migrated", status="unavailable", database=upgrade)
    return JSONResponse({"status": "ok"})


@router.get("/metrics", include_in_schema=False)
def metrics(state: MonitorState = Depends(get_state)) -> Response:
    """Prometheus text exposition of the monitor's registry."""
    return metrics_response(state.registry)
