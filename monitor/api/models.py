"""``/v1/models``: register models and read what the monitor knows of them."""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from driftloop.contract import ModelRegistration, ModelSchema
from driftloop.errors import DatasetError
from driftloop.monitor.inference import infer_from_frame
from driftloop.scores import is_score_column
from driftloop.settings import Scope
from driftloop.store import Model, reference
from driftloop.store.registry import get_model, record_counts, register, versions_of
from driftloop.urls import redact_document
from driftloop.web.auth import require
from driftloop.web.body import read_limited
from driftloop.web.state import MonitorState, get_state

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
        nested = []
        for name, section in state.model_sections.items():
            if "." in name:
                nested.append((name, section))
            else:
                out[name] = section(session, model)
        for name, section in nested:  # ``performance.estimated``: inside another section
            parent, child = name.split(".", 1)
            holder = out.get(parent)
            out[parent] = {
                **(holder if isinstance(holder, dict) else {}),
                child: section(session, model),
            }
    # Version URLs, webhook URLs and provenance may carry credentials: never shown.
    return cast(dict[str, Any], redact_document(out))


@router.get("/v1/models")
def list_models(
    limit: int | None = Query(None, ge=1, le=10_000, description="Models returned at most."),
    offset: int = Query(0, ge=0, le=2**31 - 1, description="Models skipped, by name order."),
    state: MonitorState = Depends(get_state),
) -> list[dict[str, Any]]:
    """Registered models with their schema and versions, by name (all of them unless ``limit``)."""
    with state.sessions() as session:
        query = select(Model).order_by(Model.name).offset(offset)
        models = session.scalars(query if limit is None else query.limit(limit)).all()
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
    version: str | None = Query(
        None, max_length=200, description="The version trained on it (default: the model's)."
    ),
    replace: bool = Query(
        False, description="Replace the schema when the dataset's columns do not match it."
    ),
    score_columns: str | None = Query(
        None,
        max_length=2_000,
        description="Comma-separated class scores (probabilities), one column per class in the "
        "order of the sorted class labels: the reference of performance estimation. Stored as "
        "columns named score:<class>.",
    ),
    state: MonitorState = Depends(get_state),
) -> dict[str, Any]:
    """Upload a reference dataset (Parquet or CSV) of the model or of one version; infers the
    schema when none is registered; refuses columns that do not match the schema unless
    ``replace``."""
    data = await read_limited(request, state.settings.ingest.max_reference_bytes)
    try:
        frame = reference.read_dataset(data, request.headers.get("content-type", ""))
    except DatasetError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc
    scores = list(dict.fromkeys(c.strip() for c in (score_columns or "").split(",") if c.strip()))
    for column in (label_column, prediction_column, *scores):
        if column is not None and column not in frame.columns:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail=f"column {column!r} is not in the dataset (columns: {list(frame.columns)})",
            )
    not_numbers = [c for c in scores if not _is_number(frame[c])]
    if not_numbers:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"score columns hold non-numbers: {not_numbers}",
        )
    return await _store_reference(
        state,
        name,
        frame,
        label_column,
        prediction_column,
        version=version,
        replace=replace,
        score_columns=scores,
    )


def _is_number(column: Any) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column))


def _score_names(
    frame: Any, schema: ModelSchema, label_column: str | None, score_columns: list[str]
) -> dict[str, str]:
    """Score column -> ``score:<class>``, the classes in sorted order (the schema's, else the
    reference labels'); raises :class:`DatasetError` when the counts differ."""
    from driftloop.monitor.estimation import SCORE_PREFIX, sorted_classes

    label = label_column or schema.label_column
    if schema.prediction.classes:
        classes = sorted_classes(schema.prediction.classes)
    elif label is not None and label in frame.columns:
        classes = sorted_classes(frame[label].dropna().tolist())
    else:
        raise DatasetError(
            "score columns need the classes: register them in the schema or give label_column"
        )
    if len(classes) != len(score_columns):
        raise DatasetError(
            f"{len(score_columns)} score columns for {len(classes)} classes {classes}: give one "
            "score column per class in the order of the sorted class labels"
        )
    return {c: f"{SCORE_PREFIX}{k}" for c, k in zip(score_columns, classes, strict=True)}


async def _store_reference(
    state: MonitorState,
    name: str,
    frame: Any,
    label_column: str | None,
    prediction_column: str | None,
    *,
    version: str | None = None,
    replace: bool = False,
    score_columns: list[str] | None = None,
) -> dict[str, Any]:
    scores = score_columns or []
    full = frame
    # Scores are not features: the schema is checked and inferred without them.
    frame = frame.drop(columns=scores) if scores else frame

    def work() -> dict[str, Any]:
        now = state.clock.now()
        with state.sessions.begin() as session:
            model = session.scalar(select(Model).where(Model.name == name))
            if model is None:
                register(session, ModelRegistration(name=name), now)
                model = get_model(session, name)
            data = frame
            # A schema inferred from records is a guess: only a declared one, or one inferred
            # from an earlier reference, is held against the new dataset.
            declared = model.schema and model.schema_source in ("registered", "reference")
            current = ModelSchema.model_validate(model.schema) if declared else None
            lacking = reference.unmatched_columns(frame, current) if current else []
            if lacking and not replace:
                raise DatasetError(
                    f"the dataset lacks the schema's features {lacking}: add ?replace=true "
                    "to replace the schema with one inferred from this dataset"
                )
            if model.schema_source == "registered" and not replace and current is not None:
                reference.check_against_schema(frame, current)
                schema = current
                if label_column is not None:
                    schema = schema.model_copy(update={"label_column": label_column})
            else:
                schema = infer_from_frame(
                    frame, label_column=label_column, prediction_column=prediction_column
                )
                model.schema_source = "reference"
            if prediction_column is not None and prediction_column != schema.prediction.field:
                # The reference's predictions are the baseline of prediction drift: stored under
                # the name records carry them by.
                data = frame.drop(columns=[schema.prediction.field], errors="ignore").rename(
                    columns={prediction_column: schema.prediction.field}
                )
            if scores:
                data = data.assign(
                    **{
                        new: full[old]
                        for old, new in _score_names(full, schema, label_column, scores).items()
                    }
                )
            dumped = schema.model_dump(mode="json")
            if dumped != model.schema:
                model.schema = dumped
                model.updated_at = now
            row = reference.save_reference(session, model, data, now, version=version)
            return {
                "model": name,
                "version": version,
                "rows": row.rows,
                "sha256": row.sha256,
                "score_columns": [c for c in data.columns if is_score_column(c)],
                "schema": model.schema,
            }

    try:
        return await run_in_threadpool(work)
    except DatasetError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc
