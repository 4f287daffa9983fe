"""The training system's callback: register a retrained version, start its rollout, walk lineage.

``POST /v1/models/{name}/versions`` makes the version the challenger with its URL and provenance
(snapshot id, code revision, metrics) and starts the rollout
(``driftloop.monitor.rollout.start_rollout``). Posting the same registration again is harmless.
``GET .../versions/{version}/lineage`` walks version → snapshot → the request ids it trained on.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, cast

import fsspec
import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.contract import Identifier, Role
from driftloop.errors import DriftloopError
from driftloop.feedback.integrations.mlflow_writeback import queue_lineage
from driftloop.feedback.triggers.conditions import source
from driftloop.feedback.webhooks.delivery import kick
from driftloop.jsonable import jsonable
from driftloop.settings import Scope, Settings
from driftloop.store import Model, ModelVersion, OutboxMessage, RetrainTrigger
from driftloop.store.registry import get_model, set_version
from driftloop.urls import redact_document, redact_url
from driftloop.web.auth import require
from driftloop.web.state import MonitorState, get_state

log = logging.getLogger(__name__)

router = APIRouter(tags=["retraining"])


class VersionRegistration(BaseModel):
    """What the training system sends back when a retrained version is served."""

    model_config = ConfigDict(extra="forbid")

    version: Identifier
    url: str | None = Field(None, max_length=2000, description="Where the version is served.")
    snapshot_id: str | None = Field(None, max_length=200, description="Dataset it trained on.")
    trigger_id: int | None = Field(
        None, ge=1, le=2**31 - 1, description="The trigger it answers (from the webhook)."
    )
    webhook_id: str | None = Field(None, max_length=64, description="The webhook it answers.")
    code_revision: str | None = Field(None, max_length=200, description="Training code commit.")
    metrics: dict[str, Any] = Field(default_factory=dict, description="Offline metrics.")
    provenance: dict[str, Any] = Field(default_factory=dict, description="Anything else.")
    start_rollout: bool = Field(True, description="Start the rollout against the champion.")
    mlflow_run_id: str | None = Field(
        None,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The MLflow run that trained it: the lineage is tagged onto that run.",
    )


@router.post(
    "/v1/models/{name}/versions",
    dependencies=[Depends(require(Scope.admin))],
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "Already registered with the same provenance"},
        404: {"description": "Unknown model"},
        409: {"description": "The version exists with another role or provenance"},
        422: {"description": "Unknown snapshot or trigger"},
    },
)
def register_version(
    name: str,
    body: VersionRegistration,
    response: Response,
    state: MonitorState = Depends(get_state),
) -> dict[str, Any]:
    """Register a retrained version as the challenger and start its rollout."""
    now = state.clock.now()
    with state.sessions.begin() as session:
        model = get_model(session, name)
        out, created = register(session, state.settings, model, body, now)
    if not created:
        response.status_code = status.HTTP_200_OK
    elif body.mlflow_run_id and state.settings.mlflow.tracking_uri:
        kick(state)
    return out


def register(
    session: Session, settings: Settings, model: Model, body: VersionRegistration, now: datetime
) -> tuple[dict[str, Any], bool]:
    """Make ``body.version`` the challenger and start its rollout, in the caller's transaction.

    Returns the version's description and whether it was new (False: the same registration was
    posted before, nothing changed). With an MLflow run id and an MLflow tracking URI, the
    lineage tags for that run are queued in the same transaction. Shared by the callback and the
    MLflow webhook receiver.
    """
    name = model.name
    trigger = _trigger_of(session, model, body)
    provenance = jsonable(
        {
            **body.provenance,
            "snapshot_id": body.snapshot_id or (trigger.snapshot_id if trigger else None),
            "trigger_id": None if trigger is None else trigger.id,
            "webhook_id": body.webhook_id,
            "code_revision": body.code_revision,
            "metrics": body.metrics,
            "url": body.url,
            **({"mlflow_run_id": body.mlflow_run_id} if body.mlflow_run_id else {}),
        }
    )
    existing = session.scalar(
        select(ModelVersion).where(
            ModelVersion.model_id == model.id, ModelVersion.version == body.version
        )
    )
    if existing is not None:
        stored = {k: v for k, v in (existing.provenance or {}).items() if k != "registered_at"}
        same = stored == provenance
        if same:
            return _describe(existing, rollout="unchanged"), False
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"version {body.version!r} of {name!r} is already registered "
            f"(role {existing.role}) with another provenance; register a new version",
        )
    provenance["registered_at"] = now.isoformat()
    row = set_version(session, model, body.version, Role.challenger, body.url, now, provenance)
    rollout = "not requested"
    if body.start_rollout:
        start = source("driftloop.monitor.rollout", "start_rollout")
        if start is None:
            rollout = "unavailable"
            log.warning("rollout component missing: %s %s stays challenger", name, body.version)
        else:
            try:
                start(session, model, body.version, now)
            except DriftloopError as exc:
                raise HTTPException(
                    status.HTTP_409_CONFLICT, detail=f"cannot start the rollout: {exc}"
                ) from exc
            rollout = "started"
    if body.mlflow_run_id and settings.mlflow.tracking_uri:
        queue_lineage(session, settings, model, row, body.mlflow_run_id, now)
    described = _describe(row, rollout=rollout)
    described["reference"] = _adopt_snapshot(session, model, body.version, provenance, now)
    return described, True


def _adopt_snapshot(
    session: Session, model: Model, version: str, provenance: dict[str, Any], now: datetime
) -> dict[str, Any] | None:
    """Store the snapshot the version trained on as its own reference (drift and skew of the
    version are measured against it); None when no snapshot was named."""
    snapshot_id = provenance.get("snapshot_id")
    if not snapshot_id:
        return None
    from driftloop.feedback.snapshots import get_snapshot, read_snapshot
    from driftloop.store.reference import save_reference

    manifest = get_snapshot(session, str(snapshot_id))
    if manifest is None:
        return {"snapshot_id": snapshot_id, "stored": False, "reason": "unknown snapshot"}
    try:
        frame = read_snapshot(manifest)
        stored = save_reference(session, model, frame, now, version=version)
    except (OSError, ValueError, DriftloopError) as exc:
        # The version still registers; its drift falls back to the model's default reference.
        log.warning(
            "model %s version %s: snapshot %s not adopted as its reference (%s); upload one "
            "with PUT /v1/models/%s/reference?version=%s",
            model.name,
            version,
            snapshot_id,
            exc,
            model.name,
            version,
        )
        return {"snapshot_id": snapshot_id, "stored": False, "reason": str(exc)}
    return {"snapshot_id": snapshot_id, "stored": True, "rows": stored.rows, "id": stored.id}


@router.get(
    "/v1/models/{name}/versions/{version}/lineage",
    responses={404: {"description": "Unknown model or version"}},
)
def lineage(
    name: str,
    version: str,
    limit: int = Query(1000, ge=0, le=10_000, description="Request ids returned at most."),
    offset: int = Query(0, ge=0, le=2**31 - 1, description="Request ids skipped (pagination)."),
    state: MonitorState = Depends(get_state),
) -> dict[str, Any]:
    """Version → trigger → snapshot → request ids the version was trained on, a page at a time
    (``next_offset`` is the next page's ``offset``; None on the last)."""
    with state.sessions() as session:
        model = get_model(session, name)
        row = session.scalar(
            select(ModelVersion).where(
                ModelVersion.model_id == model.id, ModelVersion.version == version
            )
        )
        if row is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, detail=f"model {name!r} has no version {version!r}"
            )
        provenance = row.provenance or {}
        out: dict[str, Any] = {**_describe(row), "trigger": None, "snapshot": None}
        trigger_id = provenance.get("trigger_id")
        trigger = session.get(RetrainTrigger, trigger_id) if isinstance(trigger_id, int) else None
        if trigger is not None:
            message = session.scalar(
                select(OutboxMessage).where(OutboxMessage.trigger_id == trigger.id)
            )
            out["trigger"] = {
                "id": trigger.id,
                "reason": trigger.reason,
                "fired_at": trigger.fired_at.isoformat(),
                "evidence": trigger.evidence,
                "webhook_id": None if message is None else message.webhook_id,
            }
        snapshot_id = provenance.get("snapshot_id")
        manifest = _manifest(session, snapshot_id, trigger)
    if manifest is not None:
        out["snapshot"] = manifest
        out.update(_request_ids(manifest, limit, offset))
    return cast(dict[str, Any], redact_document(out))


def _trigger_of(session: Session, model: Model, body: VersionRegistration) -> RetrainTrigger | None:
    if body.snapshot_id is not None:
        get_snapshot = source("driftloop.feedback", "get_snapshot")
        if get_snapshot is not None and get_snapshot(session, body.snapshot_id) is None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail=f"unknown snapshot_id {body.snapshot_id!r}",
            )
    query = select(RetrainTrigger).where(RetrainTrigger.model_id == model.id)
    if body.trigger_id is not None:
        trigger = session.scalar(query.where(RetrainTrigger.id == body.trigger_id))
        if trigger is None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail=f"model {model.name!r} has no trigger {body.trigger_id}",
            )
        return trigger
    if body.webhook_id is not None:
        message = session.scalar(
            select(OutboxMessage).where(
                OutboxMessage.webhook_id == body.webhook_id, OutboxMessage.model_id == model.id
            )
        )
        if message is None or message.trigger_id is None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail=f"model {model.name!r} sent no webhook {body.webhook_id!r}",
            )
        return session.get(RetrainTrigger, message.trigger_id)
    if body.snapshot_id is not None:
        return session.scalar(
            query.where(RetrainTrigger.snapshot_id == body.snapshot_id).order_by(
                RetrainTrigger.id.desc()
            )
        )
    return None


def _manifest(
    session: Session, snapshot_id: Any, trigger: RetrainTrigger | None
) -> dict[str, Any] | None:
    if isinstance(snapshot_id, str):
        get_snapshot = source("driftloop.feedback", "get_snapshot")
        if get_snapshot is not None:
            found = get_snapshot(session, snapshot_id)
            if found is not None:
                return dict(found)
    if trigger is not None and trigger.manifest is not None:
        return dict(trigger.manifest)
    return None


def _request_ids(manifest: dict[str, Any], limit: int, offset: int = 0) -> dict[str, Any]:
    column = (manifest.get("lineage") or {}).get("request_id_column", "request_id")
    uri = manifest.get("uri")
    if not uri:
        return {"request_ids": None, "request_count": None, "lineage_error": "no snapshot URI"}
    try:
        with fsspec.open(uri, "rb") as handle:
            table = pq.read_table(handle, columns=[column])
    except Exception as exc:  # any storage error (missing file, credentials): say so, no 500
        return {
            "request_ids": None,
            "request_count": None,
            "lineage_error": f"cannot read {uri}: {exc}",
        }
    ids = [i for i in table.column(column).to_pylist() if i is not None]
    end = offset + limit
    return {
        "request_ids": ids[offset:end],
        "request_count": len(ids),
        "offset": offset,
        "next_offset": end if end < len(ids) else None,
    }


def _describe(row: ModelVersion, rollout: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "version": row.version,
        "role": row.role,
        "url": None if row.url is None else redact_url(row.url),
        "provenance": redact_document(row.provenance),
        "created_at": row.created_at.isoformat(),
    }
    if rollout is not None:
        out["rollout"] = rollout
    return out
