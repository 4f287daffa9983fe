"""``/v1/models``: register models and read what the monitor knows of them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from driftloop.contract import ModelRegistration, ModelSchema
from driftloop.errors import DatasetError
from driftloop.monitor import reference
from driftloop.monitor.api.body import read_limited
from driftloop.monitor.auth import require
from driftloop.monitor.inference import infer_from_frame
from driftloop.monitor.registry import get_model, record_counts, register, versions_of
from driftloop.monitor.state import MonitorState, get_state
from driftloop.settings import Scope
from driftloop.store import Model

router = APIRouter(tags=["models"])


def describe(session: Session, state: MonitorState, model: Model, *, full: bool) -> dict[str, Any]:
    """The JSON view of a model; ``full`` adds counts and every component's section."""
    out: dict[str, Any] = {
        "name": model.name,
        "schema": model.schema,
        "schema_source": model.schema_source,
        "versions": [
            {"version": v.version, "role": v.role, "url": v.url, "provenance": v.provenance}
            for v in versions_of(session, model)
        ],
        "created_at": model.created_at.isoformat(),
        "updated_at": model.updated_at.isoformat(),
    }
    if full:
        out.update(record_counts(session, model))
        ref = reference.latest_reference(session, model)
        out["reference"] = (
            None
            if ref is None
            else {"rows": ref.rows, "sha256": ref.sha256, "uploaded_at": ref.created_at.isoformat()}
        )
        for name, section in state.model_sections.items():
            out[name] = section(session, model)
    return out


@router.get("/v1/models")
def list_models(state: MonitorState = Depends(get_state)) -> list[dict[str, Any]]:
    """Every registered model with its schema and versions."""
    with state.sessions() as session:
        models = session.scalars(select(Model).order_by(Model.name)).all()
        return [describe(session, state, m, full=False) for m in models]


@router.post(
    "/v1/models",
    dependencies=[Depends(require(Scope.admin))],
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "Model updated"}, 201: {"description": "Model created"}},
)
def post_model(
    body: ModelRegistration, response: Response, state: MonitorState = Depends(get_state)
) -> dict[str, Any]:
    """Register a model, or refine its schema and versions; answers 201 when new, else 200."""
    with state.sessions.begin() as session:
        model, created = register(session, body, state.clock.now())
        if not created:
            response.status_code = status.HTTP_200_OK
        return describe(session, state, model, full=False)


@router.get("/v1/models/{name}", responses={404: {"description": "Unknown model"}})
def get_model_detail(name: str, state: MonitorState = Depends(get_state)) -> dict[str, Any]:
    """One model: schema, versions, record counts, reference, and each component's results."""
    with state.sessions() as session:
        return describe(session, state, get_model(session, name), full=True)


@router.put(
    "/v1/models/{name}/reference",
    dependencies=[Depends(require(Scope.admin))],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {
                    "schema": {"type": "string", "format": "binary"}
                },
            },
        }
    },
    responses={
        413: {"description": "Dataset over the size limit"},
        422: {"description": "Dataset unreadable or not matching the schema"},
    },
)
async def put_reference(
    name: str,
    request: Request,
    label_column: str | None = Query(None, description="Column holding the true label."),
    prediction_column: str | None = Query(None, description="Column holding a prediction."),
    state: MonitorState = Depends(get_state),
) -> dict[str, Any]:
    """Upload the reference dataset (Parquet or CSV); infers the schema when none is registered."""
    data = await read_limited(request, state.settings.ingest.max_reference_bytes)
    try:
        frame = reference.read_dataset(data, request.headers.get("content-type", ""))
    except DatasetError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc
    for column in (label_column, prediction_column):
        if column is not None and column not in frame.columns:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail=f"column {column!r} is not in the dataset (columns: {list(frame.columns)})",
            )
    return await _store_reference(state, name, frame, label_column, prediction_column)


async def _store_reference(
    state: MonitorState,
    name: str,
    frame: Any,
    label_column: str | None,
    prediction_column: str | None,
) -> dict[str, Any]:

    def work() -> dict[str, Any]:
        now = state.clock.now()
        with state.sessions.begin() as session:
            model = session.scalar(select(Model).where(Model.name == name))
            if model is None:
                register(session, ModelRegistration(name=name), now)
                model = get_model(session, name)
            if model.schema_source == "registered":
                reference.check_against_schema(frame, ModelSchema.model_validate(model.schema))
            else:
                inferred = infer_from_frame(
                    frame, label_column=label_column, prediction_column=prediction_column
                )
                model.schema = inferred.model_dump(mode="json")
                model.schema_source = "reference"
                model.updated_at = now
            row = reference.save_reference(session, model, frame, now)
            return {"model": name, "rows": row.rows, "sha256": row.sha256, "schema": model.schema}

    try:
        return await run_in_threadpool(work)
    except DatasetError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc
