"""KServe's payload logger as a record source: binary-mode CloudEvents paired by ``ce-id``.

KServe's logger (``pkg/logger``) sends each prediction as two events with the same ``ce-id``:
``ce-type`` ``org.kubeflow.serving.inference.request`` (the request body) and ``.response`` (the
response body, only when the predictor answered 200), with the extensions
``ce-inferenceservicename`` (the model), ``ce-namespace``, ``ce-component``, ``ce-endpoint``
(``default`` or ``canary``: the champion or the challenger) and ``ce-source``. Bodies are OIP v2
(``inputs``/``outputs``) or v1 (``instances``/``predictions``).

Whichever half comes first waits in the database (:class:`~driftloop.store.CloudEventHalf`), so
another replica or a restarted monitor still pairs it; the second half turns the pair into
records through the same layout rules as the sidecar, and both halves are deleted. Ingest is
idempotent on ``(request_id, variant)``, so two replicas pairing the same halves at once store
the records once. Halves that never meet their pair are pruned after ``PAIR_SECONDS``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from driftloop.contract import Batch, ModelSchema
from driftloop.errors import ValidationError
from driftloop.monitor.ingest import ingest_batch
from driftloop.serving import Captured, RecordShape, infer_layout, records_from
from driftloop.store import CloudEventHalf, Model
from driftloop.web.state import MonitorState

__all__ = [
    "ENDPOINT_VARIANTS",
    "MAX_PENDING",
    "PAIR_SECONDS",
    "REQUEST_TYPE",
    "RESPONSE_TYPE",
    "Event",
    "parse_event",
    "prune",
    "receive_event",
]

log = logging.getLogger(__name__)

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
ENDPOINT_VARIANTS = {"default": "champion", "canary": "challenger"}
PAIR_SECONDS = 600.0
"""A half waits this long for its pair, then is pruned (counted ``unpaired``)."""
MAX_PENDING = 100_000
"""At most this many halves wait; beyond it the oldest are pruned (counted ``unpaired``)."""
PRUNE_SECONDS = 10.0
"""How often one monitor process prunes."""
_KINDS = {REQUEST_TYPE: "request", RESPONSE_TYPE: "response"}


@dataclass(frozen=True)
class Event:
    """One CloudEvent of KServe's logger, as the monitor needs it."""

    event_id: str
    kind: str
    model: str
    endpoint: str
    source: str
    time: datetime | None
    body: bytes


def _header(headers: Mapping[str, str], name: str) -> str:
    # The HTTP binding percent-encodes some characters of attribute values.
    return unquote(headers.get(name, "")).strip()


def parse_event(headers: Mapping[str, str], body: bytes) -> Event:
    """The event in ``headers`` (case-insensitive) and ``body``; raises
    :class:`~driftloop.errors.ValidationError` naming the header at fault."""
    event_id = _header(headers, "ce-id")
    if (
        not (0 < len(event_id) <= 180 and event_id.isascii() and event_id.isprintable())
        or " " in event_id
    ):
        raise ValidationError(f"ce-id {event_id[:60]!r}: missing, or not a usable request id")
    kind = _KINDS.get(_header(headers, "ce-type"))
    if kind is None:
        raise ValidationError(
            f"ce-type {_header(headers, 'ce-type')[:80]!r}: expected {REQUEST_TYPE} or "
            f"{RESPONSE_TYPE} (binary-mode CloudEvents of KServe's payload logger)"
        )
    service = _header(headers, "ce-inferenceservicename")
    if not service:
        raise ValidationError("ce-inferenceservicename: missing (the model name)")
    component = _header(headers, "ce-component")
    model = service if component in ("", "predictor") else f"{service}-{component}"
    endpoint = _header(headers, "ce-endpoint") or "default"
    when: datetime | None = None
    raw_time = _header(headers, "ce-time")
    if raw_time:
        try:
            when = datetime.fromisoformat(raw_time.replace("Z", "+00:00"))
        except ValueError:
            when = None
        if when is not None and when.tzinfo is None:
            when = None
    return Event(
        event_id, kind, model[:128], endpoint[:64], _header(headers, "ce-source"), when, body
    )


def _store_half(state: MonitorState, event: Event) -> bool:
    """Keep ``event`` as a pending half; False when that half was already there."""
    try:
        with state.sessions.begin() as session:
            session.add(
                CloudEventHalf(
                    model=event.model,
                    event_id=event.event_id,
                    kind=event.kind,
                    endpoint=event.endpoint,
                    body=event.body,
                    event_time=event.time,
                    received_at=state.clock.now(),
                )
            )
    except IntegrityError:
        return False
    return True


def _records(
    state: MonitorState, request: CloudEventHalf, response: CloudEventHalf, source: str
) -> Batch | None:
    """The records of a pair, or None when the request holds no rows."""
    try:
        document = json.loads(request.body)
    except ValueError as exc:
        raise ValidationError(f"request of event {request.event_id!r} is not JSON") from exc
    with state.sessions() as session:
        raw = session.scalar(select(Model.schema).where(Model.name == request.model))
    schema = ModelSchema.model_validate(raw) if raw else ModelSchema()
    shape = RecordShape.from_schema(schema)
    layout = shape.registered("") or infer_layout(document)
    if layout is None:
        return None
    start, end = request.event_time, response.event_time
    latency = (end - start).total_seconds() * 1000.0 if start and end and end >= start else 0.0
    endpoint = request.endpoint or response.endpoint
    item = Captured(
        request.model,
        endpoint,
        ENDPOINT_VARIANTS.get(endpoint, "champion"),
        request.event_id,
        start or request.received_at,
        request.body,
        response.body,
        200,  # KServe logs a response only for HTTP 200
        latency,
    )
    records = records_from(item, document, layout, shape)
    if not records:
        return None
    batch_id = f"kserve-{request.event_id}"[:200]
    return Batch.model_validate(
        {"batch_id": batch_id, "source": (source or "kserve")[:200], "records": records}
    )


def receive_event(state: MonitorState, event: Event) -> str:
    """Store or pair ``event``; the result names what happened (``waiting``, ``paired``,
    ``duplicate``, ``no_rows``). Raises :class:`ValidationError` for a pair with a bad body."""
    _prune(state)
    if not _store_half(state, event):
        return "duplicate"
    with state.sessions() as session:
        halves = {
            h.kind: h
            for h in session.scalars(
                select(CloudEventHalf).where(
                    CloudEventHalf.model == event.model, CloudEventHalf.event_id == event.event_id
                )
            )
        }
        session.expunge_all()
    if len(halves) < 2:
        return "waiting"
    request, response = halves["request"], halves["response"]
    try:
        batch = _records(state, request, response, event.source)
        if batch is not None:
            ingest_batch(state, batch)
    finally:
        # Also on a bad pair: it can never succeed, so it must not wait to be retried.
        with state.sessions.begin() as session:
            session.execute(
                delete(CloudEventHalf).where(CloudEventHalf.id.in_([request.id, response.id]))
            )
    return "paired" if batch is not None else "no_rows"


_last_prune: dict[int, float] = {}


def _prune(state: MonitorState) -> None:
    """Prune at most every ``PRUNE_SECONDS`` per app."""
    now = time.monotonic()
    if now - _last_prune.get(id(state), -PRUNE_SECONDS) < PRUNE_SECONDS:
        return
    _last_prune[id(state)] = now
    prune(state)


def prune(state: MonitorState) -> int:
    """Delete halves past ``PAIR_SECONDS`` and the oldest beyond ``MAX_PENDING``; count them
    ``unpaired`` and return how many."""
    cutoff = state.clock.now() - timedelta(seconds=PAIR_SECONDS)
    with state.sessions.begin() as session:
        result: Any = session.execute(
            delete(CloudEventHalf).where(CloudEventHalf.received_at < cutoff)
        )
        gone = int(result.rowcount or 0)
        pending = session.scalar(select(func.count()).select_from(CloudEventHalf)) or 0
        if pending > MAX_PENDING:
            oldest = (
                select(CloudEventHalf.id).order_by(CloudEventHalf.id).limit(pending - MAX_PENDING)
            )
            result = session.execute(delete(CloudEventHalf).where(CloudEventHalf.id.in_(oldest)))
            gone += int(result.rowcount or 0)
    if gone:
        state.metrics.cloudevents.labels("unpaired").inc(gone)
        log.warning(
            "%d KServe logger event(s) found no pair within %.0f s and were dropped: set the "
            "logger's mode to `all` (KServe sends no response event for a non-200 answer)",
            gone,
            PAIR_SECONDS,
        )
    return int(gone)
