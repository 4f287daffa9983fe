"""The monitor and feedback APIs in one ASGI app: ``create_app(settings)``.

Components plug in through :data:`COMPONENTS`, an explicit tuple of ``install(app, state)``
functions; each includes its routers, registers its collector, and adds its ingest hooks, model
sections and periodic jobs. Nothing registers itself by import side effect.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, DBAPIError, SQLAlchemyError

import driftloop
from driftloop.clock import Clock, SystemClock
from driftloop.errors import DatasetError, UnknownModelError, ValidationError
from driftloop.feedback.component import install as install_feedback
from driftloop.feedback.triggers import install as install_retraining
from driftloop.monitor.api import health, models, records
from driftloop.monitor.evaluation import install as install_drift
from driftloop.monitor.jobs import JobRunner
from driftloop.monitor.metrics import HTTPMetricsMiddleware, MonitorMetrics
from driftloop.monitor.rollout import install as install_rollout
from driftloop.monitor.state import MonitorState
from driftloop.monitor.status import install as install_status
from driftloop.settings import Settings
from driftloop.store import make_engine, make_sessionmaker

log = logging.getLogger(__name__)

Install = Callable[[FastAPI, MonitorState], None]


def _install_core(app: FastAPI, state: MonitorState) -> None:
    app.include_router(records.router)
    app.include_router(models.router)
    app.include_router(health.router)


COMPONENTS: tuple[Install, ...] = (
    _install_core,
    install_drift,
    install_feedback,
    install_retraining,
    install_rollout,
    install_status,
)
"""Every component of the monitor, installed in this order."""

RETRY_AFTER_SECONDS = 5


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    registry: CollectorRegistry | None = None,
    engine: Engine | None = None,
) -> FastAPI:
    """Build the monitor app; the caller owns migrations (``driftloop db upgrade``)."""
    engine = engine or make_engine(settings.database_url)
    registry = registry or CollectorRegistry(auto_describe=True)
    metrics = MonitorMetrics(registry, driftloop.__version__)
    state = MonitorState(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        clock=clock or SystemClock(),
        registry=registry,
        metrics=metrics,
        jobs=JobRunner(),
        http=httpx.Client(timeout=httpx.Timeout(30.0, connect=5.0)),
    )
    state.jobs.bind(state)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if not settings.auth_enabled:
            log.warning("no tokens configured: the API is open; keep it on loopback")
        if settings.jobs.enabled and state.jobs.jobs:
            state.jobs.start()
        try:
            yield
        finally:
            state.jobs.stop()
            state.http.close()

    app = FastAPI(
        title="Driftloop monitor",
        version=driftloop.__version__,
        description="Records, models, drift, performance, rollouts and retraining for BentoML.",
        lifespan=lifespan,
    )
    app.state.driftloop = state
    for install in COMPONENTS:
        install(app, state)
    app.add_middleware(HTTPMetricsMiddleware, metrics=metrics)
    _add_error_handlers(app, state)
    _document_contract(app)
    return app


def _document_contract(app: FastAPI) -> None:
    """Add the record contract's schemas, which FastAPI cannot see in a hand-parsed body."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in records.openapi_schemas().items():
                schemas.setdefault(name, schema)
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]


def _add_error_handlers(app: FastAPI, state: MonitorState) -> None:
    def problem(status: int, message: str, **extra: object) -> JSONResponse:
        return JSONResponse({"detail": message, **extra}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if request.url.path == "/v1/records":
            state.metrics.batches.labels("invalid").inc()
        named = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in errors[:10]
        )
        return JSONResponse(
            {"detail": named, "errors": [_jsonable(e) for e in errors[:100]]}, status_code=422
        )

    @app.exception_handler(UnknownModelError)
    async def unknown(_request: Request, exc: UnknownModelError) -> JSONResponse:
        return problem(404, str(exc))

    @app.exception_handler(ValidationError)
    async def bad_input(_request: Request, exc: ValidationError) -> JSONResponse:
        return problem(422, str(exc), errors=exc.errors)

    @app.exception_handler(DatasetError)
    async def bad_dataset(_request: Request, exc: DatasetError) -> JSONResponse:
        return problem(422, str(exc))

    @app.exception_handler(DataError)
    async def bad_data(_request: Request, exc: DataError) -> JSONResponse:
        return problem(422, f"the database refused a value: {exc.orig}")

    @app.exception_handler(SQLAlchemyError)
    async def unavailable(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        # Never acknowledge what was not committed: the sender retries after the delay.
        if request.url.path == "/v1/records":
            state.metrics.batches.labels("unavailable").inc()
        reason = exc.orig.__class__.__name__ if isinstance(exc, DBAPIError) else type(exc).__name__
        log.warning("database unavailable (%s) on %s", reason, request.url.path)
        return JSONResponse(
            {"detail": f"database unavailable ({reason}); retry later"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


def _jsonable(error: dict[str, object]) -> dict[str, object]:
    """Pydantic error details with their context made JSON-safe."""
    out = {k: v for k, v in error.items() if k not in ("ctx", "input", "url")}
    ctx = error.get("ctx")
    if isinstance(ctx, dict):
        out["ctx"] = {k: str(v) for k, v in ctx.items()}
    return out
