"""``POST /v1/records``: batch ingest from sidecars and the middleware."""

from __future__ import annotations

from typing import Any

import pydantic
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from driftloop.contract import Batch, validate_batch_json
from driftloop.monitor.cardinality import CardinalityError
from driftloop.monitor.ingest import ingest_batch
from driftloop.settings import Scope
from driftloop.web.auth import require
from driftloop.web.body import LimitedRoute
from driftloop.web.state import MonitorState, get_state

router = APIRouter(route_class=LimitedRoute, tags=["records"])


class IngestResponse(BaseModel):
    """Counts for one accepted batch."""

    batch_id: str
    received: int
    stored: int
    duplicates: int
    conflicts: int = Field(
        0, description="Records not stored: their request id is stored with different inputs."
    )
    conflicting_request_ids: list[str] = Field(
        default_factory=list, description="The first 20 of those request ids."
    )


async def parsed_batch(request: Request) -> Batch:
    """The body as a :class:`Batch`, parsed and validated in one pass by pydantic-core.

    Skipping ``json.loads`` and validating from bytes halves the monitor's CPU per record;
    errors keep FastAPI's shape (``loc`` starting with ``body``) and become a 422.
    """
    body = await request.body()
    try:
        return validate_batch_json(body)
    except pydantic.ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body=None) from exc


def openapi_schemas() -> dict[str, Any]:
    """The contract's schemas for ``components.schemas`` (the body is parsed by hand)."""
    schema = Batch.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions: dict[str, Any] = schema.pop("$defs", {})
    return {**definitions, "Batch": schema}


@router.post(
    "/v1/records",
    dependencies=[Depends(require(Scope.ingest))],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Batch"}}},
        }
    },
    responses={
        413: {"description": "Body or batch over the size limits"},
        415: {"description": "Content-Type is not JSON"},
        422: {
            "description": "A record breaks the contract, or the batch passes a cardinality cap "
            "(models, versions per model, versions per batch); the message names it"
        },
        503: {"description": "Database unavailable; retry after the Retry-After delay"},
    },
)
def post_records(
    batch: Batch = Depends(parsed_batch), state: MonitorState = Depends(get_state)
) -> IngestResponse:
    """Store a batch of records (gzip accepted); resending the same records is harmless."""
    limit = state.settings.ingest.max_records
    if len(batch.records) > limit:
        state.metrics.batches.labels("too_large").inc()
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"batch of {len(batch.records)} records is over the limit of {limit}",
        )
    try:
        result = ingest_batch(state, batch)
    except CardinalityError:
        state.metrics.batches.labels("over_cap").inc()
        raise
    state.metrics.batches.labels("accepted").inc()
    return IngestResponse(
        **{**result.__dict__, "conflicting_request_ids": list(result.conflicting_request_ids)}
    )
