"""``POST /v1/records``: batch ingest from sidecars and the middleware."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel

from driftloop.contract import Batch
from driftloop.monitor.api.body import LimitedRoute
from driftloop.monitor.auth import require
from driftloop.monitor.ingest import ingest_batch
from driftloop.monitor.state import MonitorState, get_state
from driftloop.settings import Scope

router = APIRouter(route_class=LimitedRoute, tags=["records"])


class IngestResponse(BaseModel):
    """Counts for one accepted batch."""

    batch_id: str
    received: int
    stored: int
    duplicates: int


@router.post(
    "/v1/records",
    dependencies=[Depends(require(Scope.ingest))],
    responses={
        413: {"description": "Body or batch over the size limits"},
        503: {"description": "Database unavailable; retry after the Retry-After delay"},
    },
)
def post_records(batch: Batch, state: MonitorState = Depends(get_state)) -> IngestResponse:
    """Store a batch of records (gzip accepted); resending the same records is harmless."""
    limit = state.settings.ingest.max_records
    if len(batch.records) > limit:
        state.metrics.batches.labels("too_large").inc()
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"batch of {len(batch.records)} records is over the limit of {limit}",
        )
    result = ingest_batch(state, batch)
    state.metrics.batches.labels("accepted").inc()
    return IngestResponse(**result.__dict__)
