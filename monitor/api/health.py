"""Liveness, readiness and the Prometheus exposition."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from driftloop.store import is_current
from driftloop.store.engine import reader
from driftloop.web.metrics import metrics_response
from driftloop.web.state import MonitorState, get_state

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Database unreachable or not migrated"}})
def readyz(state: MonitorState = Depends(get_state)) -> JSONResponse:
    """The database answers and is migrated to the code's schema."""
    engine = reader(state.engine)  # never waits for SQLite's write lock held by a job
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        migrated = is_current(engine)
    except SQLAlchemyError as exc:
        return JSONResponse({"status": "unavailable", "database": str(exc.__class__.__name__)}, 503)
    if not migrated:
        return JSONResponse(
            {"status": "unavailable", "database": "not migrated: run `driftloop db upgrade`"}, 503
        )
    return JSONResponse({"status": "ok"})


@router.get("/metrics", include_in_schema=False)
def metrics(state: MonitorState = Depends(get_state)) -> Response:
    """Prometheus text exposition of the monitor's registry."""
    return metrics_response(state.registry)
