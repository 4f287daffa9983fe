"""``POST /v1/cloudevents``: KServe's payload logger pointed straight at the monitor.

Takes the binary-mode CloudEvents KServe's logger sends (``logger.url`` of an
InferenceService) and pairs request and response by ``ce-id`` (:mod:`driftloop.monitor.kserve`).
KServe's logger sends no ``Authorization`` header: where tokens are configured, put an ingest
token in the URL's ``token`` query parameter.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from driftloop.monitor.kserve import parse_event, receive_event
from driftloop.settings import Scope
from driftloop.web.auth import authorize
from driftloop.web.body import LimitedRoute
from driftloop.web.state import MonitorState, get_state

router = APIRouter(route_class=LimitedRoute, tags=["records"])


def require_ingest(request: Request, state: MonitorState = Depends(get_state)) -> None:
    """The ingest scope, from ``Authorization: Bearer`` or the ``token`` query parameter."""
    header = request.headers.get("authorization", "")
    token = request.query_params.get("token")
    if not header and token:
        header = f"Bearer {token}"
    error = authorize(header, state.settings.tokens, Scope.ingest)
    if error is not None:
        raise error


@router.post(
    "/v1/cloudevents",
    dependencies=[Depends(require_ingest)],
    responses={
        413: {"description": "Body over the size limit"},
        422: {"description": "Not a KServe logger event, or a body without usable JSON"},
        503: {"description": "Database unavailable; retry after the Retry-After delay"},
    },
)
async def post_cloudevent(
    request: Request, state: MonitorState = Depends(get_state)
) -> dict[str, Any]:
    """One half of a logged inference (KServe ``logger``, binary-mode CloudEvent): kept until
    its pair arrives by ``ce-id``, then recorded like a sidecar's capture."""
    body = await request.body()
    event = parse_event(request.headers, body)
    result = await run_in_threadpool(receive_event, state, event)
    state.metrics.cloudevents.labels(result).inc()
    return {"id": event.event_id, "model": event.model, "result": result}
