"""``POST /v1/feedback`` (labels) and ``/v1/models/{name}/datasets`` (snapshots)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pandas as pd
import pydantic
from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter
from starlette.concurrency import run_in_threadpool

from driftloop.contract import Label, Variant
from driftloop.errors import DatasetError, ValidationError
from driftloop.feedback.labels import LabelResult, store_labels
from driftloop.feedback.metrics import FeedbackMetrics, get_metrics
from driftloop.feedback.performance import Options, performance
from driftloop.feedback.snapshots import create_snapshot, get_snapshot
from driftloop.outbound import check_snapshot_destination
from driftloop.settings import Scope
from driftloop.store.reference import read_dataset
from driftloop.store.registry import get_model
from driftloop.web.auth import require
from driftloop.web.body import LimitedRoute, gunzip_limited, read_limited
from driftloop.web.state import MonitorState, get_state

router = APIRouter(route_class=LimitedRoute, tags=["feedback"])

ROWS = TypeAdapter(list[Label])
LABEL_SCHEMA = Label.model_json_schema()


def _refused(exc: pydantic.ValidationError) -> ValidationError:
    """A 422 naming the row and field of every problem pydantic found."""
    errors: list[dict[str, object]] = []
    for error in exc.errors()[:100]:
        loc = list(error["loc"])
        row = loc.pop(0) if loc and isinstance(loc[0], int) else 0
        errors.append({"row": int(row), "field": ".".join(map(str, loc)), "problem": error["msg"]})
    listed = "; ".join(f"row {e['row']} {e['field']}: {e['problem']}" for e in errors[:5])
    return ValidationError(f"{exc.error_count()} problems in the labels: {listed}", errors)


async def _read(request: Request, state: MonitorState) -> tuple[bytes, bool]:
    """The body (gunzipped) and whether it is JSON; files get the bulk upload limits."""
    content_type = request.headers.get("content-type", "").lower()
    if "json" in content_type:
        return await request.body(), True
    limit = state.settings.feedback.max_upload_bytes
    raw = await read_limited(request, limit)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        raw = gunzip_limited(raw, limit)
    is_json = raw.lstrip()[:1] in (b"{", b"[")
    return raw, is_json


def _from_frame(frame: pd.DataFrame, model: str | None) -> list[Label]:
    missing = [c for c in ("request_id", "label") if c not in frame.columns]
    if missing:
        raise DatasetError(
            f"the label file lacks the columns {missing} (columns: {list(frame.columns)})"
        )
    columns = [c for c in ("request_id", "label", "model", "timestamp") if c in frame.columns]
    frame = frame[columns].astype(object).where(frame[columns].notna(), None)
    if "request_id" in frame:
        frame["request_id"] = frame["request_id"].map(lambda v: None if v is None else str(v))
    if model is not None and "model" not in frame:
        frame["model"] = model
    if "timestamp" in frame:
        frame["timestamp"] = frame["timestamp"].map(
            lambda v: v.isoformat() if isinstance(v, datetime | pd.Timestamp) else v
        )
    records = frame.to_dict("records")
    for record in records:
        if record["label"] is None:
            record["label"] = float("nan")  # refused by the contract, naming the row
    try:
        return ROWS.validate_python(records)
    except pydantic.ValidationError as exc:
        raise _refused(exc) from exc


@router.post(
    "/v1/feedback",
    dependencies=[Depends(require(Scope.feedback))],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"oneOf": [LABEL_SCHEMA, {"type": "array", "items": LABEL_SCHEMA}]}
                },
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {
                    "schema": {"type": "string", "format": "binary"}
                },
            },
        }
    },
    responses={
        413: {"description": "Body over the size limits"},
        422: {"description": "Labels refused (rows named); nothing stored"},
        503: {"description": "Database unavailable; retry after the Retry-After delay"},
    },
)
async def post_feedback(
    request: Request,
    model: str | None = Query(None, description="Model of the rows of a file without 'model'."),
    state: MonitorState = Depends(get_state),
    metrics: FeedbackMetrics = Depends(get_metrics),
) -> dict[str, Any]:
    """Store labels: one JSON label, a JSON list, or a CSV/Parquet file with ``request_id`` and
    ``label`` columns (optional ``model``, ``timestamp``). A label for a request id already
    labeled replaces it (a correction). Gzip accepted."""
    data, is_json = await _read(request, state)
    if is_json:
        try:
            document = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationError(f"the body is not valid JSON: {exc}") from exc
        try:
            labels = ROWS.validate_python(document if isinstance(document, list) else [document])
        except pydantic.ValidationError as exc:
            raise _refused(exc) from exc
        if model is not None:
            labels = [lb if lb.model else lb.model_copy(update={"model": model}) for lb in labels]
    else:
        frame = read_dataset(data, request.headers.get("content-type", ""))
        labels = await run_in_threadpool(_from_frame, frame, model)
    limit = state.settings.feedback.max_labels
    if len(labels) > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"{len(labels)} labels are over the limit of {limit} per request",
        )

    def work() -> LabelResult:
        with state.sessions.begin() as session:
            return store_labels(session, labels, state.clock.now())

    result = await run_in_threadpool(work)
    metrics.count_labels(result)
    return result.as_dict()


class SnapshotRequest(BaseModel):
    """Body of ``POST /v1/models/{name}/datasets``; every field optional."""

    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime | None = Field(None, description="Predictions at or after (UTC).")
    until: AwareDatetime | None = Field(None, description="Predictions before (UTC).")
    variant: Variant | None = Field(None, description="Only rows of this variant.")
    out: str | None = Field(None, description="Directory or fsspec URL; default snapshot_dir.")
    include_reference: bool = Field(True, description="Add the labeled reference rows.")
    include_archive: bool = Field(
        False,
        description="Add labeled rows of the range that were pruned to the archive "
        "(retention.archive_url); rows still in the database are taken from there.",
    )


@router.post(
    "/v1/models/{name}/datasets",
    dependencies=[Depends(require(Scope.admin))],
    status_code=status.HTTP_201_CREATED,
    responses={404: {"description": "Unknown model"}, 422: {"description": "Nothing to write"}},
)
def post_dataset(
    name: str,
    body: SnapshotRequest | None = Body(None),
    state: MonitorState = Depends(get_state),
    metrics: FeedbackMetrics = Depends(get_metrics),
) -> dict[str, Any]:
    """Write a dataset snapshot (reference + labeled production rows) and return its manifest."""
    wanted = body or SnapshotRequest()
    if wanted.since and wanted.until and wanted.since >= wanted.until:
        raise ValidationError(f"since {wanted.since} is not before until {wanted.until}")
    settings = state.settings
    out = settings.snapshot_dir
    if wanted.out is not None:
        out = check_snapshot_destination(
            wanted.out, settings.snapshot_dir, settings.snapshot_allowed_prefixes
        )
    with state.sessions.begin() as session:
        manifest = create_snapshot(
            session,
            get_model(session, name),
            out=out,
            since=wanted.since,
            until=wanted.until,
            variant=wanted.variant.value if wanted.variant else None,
            now=state.clock.now(),
            include_reference=wanted.include_reference,
            include_archive=wanted.include_archive,
            archive_url=settings.retention.archive_url,
        )
    metrics.snapshots.labels(name).inc()
    return manifest


@router.get(
    "/v1/models/{name}/datasets/{snapshot_id}", responses={404: {"description": "No such snapshot"}}
)
def get_dataset(
    name: str, snapshot_id: str, state: MonitorState = Depends(get_state)
) -> dict[str, Any]:
    """The manifest of one snapshot of the model."""
    with state.sessions() as session:
        get_model(session, name)
        manifest = get_snapshot(session, snapshot_id)
    if manifest is None or manifest.get("model") != name:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"no snapshot {snapshot_id!r} of model {name!r}"
        )
    return manifest


@router.get("/v1/models/{name}/performance", responses={404: {"description": "Unknown model"}})
def get_performance(
    name: str,
    since: AwareDatetime | None = Query(None, description="Predictions at or after (UTC)."),
    until: AwareDatetime | None = Query(None, description="Predictions before (UTC)."),
    state: MonitorState = Depends(get_state),
) -> dict[str, Any]:
    """Performance computed now over ``[since, until)`` (the periodic job's windows are in
    ``GET /v1/models/{name}``)."""
    with state.sessions() as session:
        model = get_model(session, name)
        options = Options.from_settings(state.settings.feedback)
        return performance(session, model, since=since, until=until, options=options)
