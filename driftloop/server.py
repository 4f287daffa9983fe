"""The composition root: the monitor and feedback APIs in one ASGI app, ``create_app(settings)``.

The only module that knows every component. It builds the shared state once (the web layer,
``driftloop.web``) and installs the components through :data:`COMPONENTS`, an explicit tuple of
``install(app, state)`` functions; each includes its routers, registers its collector, and adds
its ingest hooks, model sections and periodic jobs. Nothing registers itself by import side
effect. What one component needs of another is handed over here (the rollouts get feedback's
labeled rows, the estimation its window's rows, the retraining conditions the estimates), so
the components never import each other both ways.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
import pydantic
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, DBAPIError, SQLAlchemyError

import driftloop
from driftloop.clock import Clock, SystemClock
from driftloop.errors import DatasetError, MissingExtraError, UnknownModelError, ValidationError
from driftloop.feedback import labeled_rows, window_rows
from driftloop.feedback.component import install as install_feedback
from driftloop.feedback.integrations.mlflow import install as install_mlflow
from driftloop.feedback.triggers import install as install_retraining
from driftloop.monitor.api import cloudevents, health, layouts, models, records
from driftloop.monitor.estimation.component import estimated_performance
from driftloop.monitor.estimation.component import install as install_estimation
from driftloop.monitor.evaluation import install as install_drift
from driftloop.monitor.guard import AccessGuard, document_refusals
from driftloop.monitor.retention import install as install_retention
from driftloop.monitor.rollout import install as install_rollout
from driftloop.monitor.status import install as install_status
from driftloop.settings import Settings
from driftloop.store import make_engine, make_sessionmaker
from driftloop.store.errors import database_unavailable, failure_name
from driftloop.web.jobs import JobRunner
from driftloop.web.metrics import HTTPMetricsMiddleware, MonitorMetrics
from driftloop.web.state import MonitorState
from driftloop.web.unavailable import unavailable_response

log = logging.getLogger(__name__)

Install = Callable[[FastAPI, MonitorState], None]


def _install_core(app: FastAPI, state: MonitorState) -> None:
    app.include_router(records.router)
    app.include_router(models.router)
    app.include_router(health.router)
    app.include_router(cloudevents.router)
    app.include_router(layouts.router)


COMPONENTS: tuple[Install, ...] = (
    _install_core,
    install_drift,
    install_feedback,
    partial(install_retraining, estimates=estimated_performance),
    partial(install_rollout, rows=labeled_rows),
    partial(install_estimation, rows=window_rows),
    install_mlflow,
    install_status,
    install_retention,
)
"""Every component of the server, installed in this order."""


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
    clock = clock or SystemClock()
    state = MonitorState(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        clock=clock,
        registry=registry,
        metrics=metrics,
        jobs=JobRunner(engine, metrics, clock),
        http=httpx.Client(timeout=httpx.Timeout(30.0, connect=5.0)),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if not settings.auth_enabled:
            log.warning("no tokens configured: the API is open; keep it on loopback")
        if settings.jobs.enabled and state.jobs.jobs:
            state.jobs.start(state)
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
    # The guard sits inside the metrics middleware, so its refusals are counted per route.
    app.add_middleware(AccessGuard, settings=settings, openapi=lambda: app.openapi())
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
            document_refusals(document)
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

    @app.exception_handler(MissingExtraError)
    async def missing_extra(_request: Request, exc: MissingExtraError) -> JSONResponse:
        # An optional feature (the Evidently report) whose extra is not installed here.
        return problem(501, str(exc))

    @app.exception_handler(DatasetError)
    async def bad_dataset(_request: Request, exc: DatasetError) -> JSONResponse:
        return problem(422, str(exc))

    @app.exception_handler(DataError)
    async def bad_data(_request: Request, exc: DataError) -> JSONResponse:
        return problem(422, f"the database refused a value: {exc.orig}")

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, exc: RecursionError) -> JSONResponse:
        # JSON nested hundreds of levels deep exhausts the parser's or validator's stack.
        if request.url.path == "/v1/records":
            state.metrics.batches.labels("invalid").inc()
        return problem(422, "the JSON body is nested too deeply")

    @app.exception_handler(pydantic.ValidationError)
    async def invalid_value(_request: Request, exc: pydantic.ValidationError) -> JSONResponse:
        # A value a handler validated itself (a path parameter that is not a model name).
        named = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()[:10]
        )
        return JSONResponse(
            {"detail": named, "errors": [_jsonable(dict(e)) for e in exc.errors()[:100]]},
            status_code=422,
        )

    @app.exception_handler(SQLAlchemyError)
    async def unavailable(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        if not database_unavailable(exc):
            # A statement the database refuses every time: retrying cannot help, so no 503.
            if request.url.path == "/v1/records":
                state.metrics.batches.labels("refused").inc()
            log.error("database refused a statement on %s", request.url.path, exc_info=exc)
            return problem(500, f"the database refused the request ({failure_name(exc)})")
        # Never acknowledge what was not committed: the sender retries after the delay.
        if request.url.path == "/v1/records":
            state.metrics.batches.labels("unavailable").inc()
        reason = failure_name(exc)
        log.warning("database unavailable (%s) on %s", reason, request.url.path)
        return unavailable_response(reason)

    dbapi = state.engine.dialect.loaded_dbapi

    @app.exception_handler(dbapi.Error)
    async def driver_error(request: Request, exc: Exception) -> JSONResponse:
        # Statements sent on the driver's own connection (PostgreSQL's COPY) raise the driver's
        # errors, which SQLAlchemy never wraps: without this, a connection lost mid-batch would
        # be a bare 500 rather than the 503 a sender retries.
        wrapped = DBAPIError.instance(None, None, exc, dbapi.Error, dialect=state.engine.dialect)
        return await unavailable(request, wrapped)


def _jsonable(error: dict[str, object]) -> dict[str, object]:
    """Pydantic error details with their context made JSON-safe."""
    out = {k: v for k, v in error.items() if k not in ("ctx", "input", "url")}
    ctx = error.get("ctx")
    if isinstance(ctx, dict):
        out["ctx"] = {k: str(v) for k, v in ctx.items()}
    return out
