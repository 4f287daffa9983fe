"""``POST /v1/integrations/mlflow``: MLflow Model Registry webhooks in, challengers registered.

MLflow 3 (from 3.3.0) signs every delivery like Standard Webhooks under its own header names:
``X-MLflow-Signature: v1,<base64 HMAC-SHA256 of "{delivery_id}.{timestamp}.{body}">`` keyed by
the UTF-8 bytes of the webhook's secret, with ``X-MLflow-Delivery-Id`` (a UUID per delivery, kept
across MLflow's retries) and ``X-MLflow-Timestamp`` (Unix seconds). The body is
``{"entity", "action", "timestamp", "data"}``. MLflow retries 429 and 5xx up to 3 times with the
same id, timestamp and body; it never retries a 4xx.

A delivery is checked (:func:`driftloop.feedback.webhooks.signing.verify`, our Standard Webhooks
verifier), refused when stale, then processed in one transaction with the row that records its
id: a delivery id seen before is refused (409) and changes nothing, so a replay and a retry of a
delivery already acted on are both no-ops, while a retry of one that failed (nothing committed) is
processed as new. A ``model_version.created`` event (or the tag or alias the settings name)
registers the version as the challenger of the mapped Driftloop model and starts its rollout,
through the same code as the training-system callback.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from driftloop.errors import UnknownModelError
from driftloop.feedback.integrations.mlflow_rest import MlflowError, MlflowRest
from driftloop.feedback.integrations.mlflow_writeback import (
    EVENT_TYPE,
    MlflowSender,
    queue_registration,
    queue_verdicts,
)
from driftloop.feedback.triggers.callback import VersionRegistration, register
from driftloop.feedback.webhooks.delivery import kick
from driftloop.feedback.webhooks.signing import SignatureError, verify
from driftloop.settings import MlflowSettings
from driftloop.store import MlflowDelivery, ModelVersion
from driftloop.store.registry import get_model
from driftloop.web.state import MonitorState, get_state

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

DELIVERY_HEADER = "x-mlflow-delivery-id"
TIMESTAMP_HEADER = "x-mlflow-timestamp"
SIGNATURE_HEADER = "x-mlflow-signature"
MAX_BODY_BYTES = 1024 * 1024
VERDICT_JOB = "mlflow.writeback"

OUTCOMES = (
    "registered",
    "unchanged",
    "ignored",
    "unmapped",
    "conflict",
    "replayed",
    "stale",
    "bad_signature",
    "malformed",
    "unconfigured",
    "mlflow_unreachable",
)
"""Every answer to a delivery, counted in ``driftloop_mlflow_webhooks_total{outcome}``."""

TRUE = ("true", "1", "yes")

router = APIRouter(tags=["integrations"])


class Refused(Exception):
    """A delivery answered with an error: its HTTP status, outcome and the message."""

    def __init__(self, code: int, outcome: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.outcome, self.detail = code, outcome, detail


def webhook_counter(registry: CollectorRegistry) -> Counter:
    """``driftloop_mlflow_webhooks_total{outcome}`` on the app's registry."""
    counter = getattr(registry, "_driftloop_mlflow_counter", None)
    if counter is None:
        counter = Counter(
            "driftloop_mlflow_webhooks",
            "MLflow registry webhook deliveries received, by outcome.",
            ["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            counter.labels(outcome)
        registry._driftloop_mlflow_counter = counter  # type: ignore[attr-defined]
    return counter


@router.post(
    "/v1/integrations/mlflow",
    responses={
        200: {"description": "Processed: registered, unchanged or ignored (see status)"},
        400: {"description": "Malformed delivery or stale timestamp"},
        401: {"description": "Signature does not match the configured secret"},
        403: {"description": "No MLflow webhook secret configured"},
        404: {"description": "No Driftloop model for the registered model"},
        409: {"description": "Delivery id already processed (replay or retry): nothing done"},
        413: {"description": "Body too large"},
    },
)
async def receive(request: Request, state: MonitorState = Depends(get_state)) -> JSONResponse:
    """Verify an MLflow registry webhook and register the version it announces."""
    counter = webhook_counter(state.registry)
    body = await request.body()
    try:
        answer = await _process(request, body, state)
    except Refused as exc:
        counter.labels(exc.outcome).inc()
        level = logging.INFO if exc.outcome in ("replayed", "unmapped") else logging.WARNING
        log.log(level, "MLflow webhook refused (%s): %s", exc.outcome, exc.detail)
        return JSONResponse({"detail": exc.detail, "outcome": exc.outcome}, status_code=exc.code)
    counter.labels(answer["outcome"]).inc()
    return JSONResponse(answer)


async def _process(request: Request, body: bytes, state: MonitorState) -> dict[str, Any]:
    cfg = state.settings.mlflow
    if len(body) > MAX_BODY_BYTES:
        raise Refused(413, "malformed", f"body of {len(body)} bytes; at most {MAX_BODY_BYTES}")
    if not cfg.webhook_secret:
        raise Refused(
            403,
            "unconfigured",
            "no MLflow webhook secret configured: set DRIFTLOOP_MLFLOW__WEBHOOK_SECRET to the "
            "secret given to MLflow (driftloop mlflow setup does both)",
        )
    delivery_id = request.headers.get(DELIVERY_HEADER)
    try:
        verify(
            delivery_id,
            request.headers.get(TIMESTAMP_HEADER),
            body,
            request.headers.get(SIGNATURE_HEADER),
            [cfg.webhook_secret.encode("utf-8")],
            state.clock.now(),
            cfg.tolerance_seconds,
        )
    except SignatureError as exc:
        code = status.HTTP_401_UNAUTHORIZED if exc.reason == "bad_signature" else 400
        raise Refused(code, exc.reason, str(exc)) from exc
    assert delivery_id is not None  # verify refuses a missing one
    if len(delivery_id) > 128:
        raise Refused(400, "malformed", "X-MLflow-Delivery-Id longer than 128 characters")
    try:
        event = json.loads(body)
        kind = f"{event['entity']}.{event['action']}"
        data = dict(event["data"])
    except (ValueError, KeyError, TypeError) as exc:
        raise Refused(400, "malformed", f"not an MLflow webhook body: {exc!r}") from exc
    return await run_in_threadpool(_handle, state, delivery_id, kind, data)


def _handle(
    state: MonitorState, delivery_id: str, kind: str, data: dict[str, Any]
) -> dict[str, Any]:
    cfg = state.settings.mlflow
    with state.sessions() as session:
        seen = session.scalar(
            select(MlflowDelivery).where(MlflowDelivery.delivery_id == delivery_id)
        )
        if seen is not None:
            raise _replayed(seen)
    version = _announced(cfg, kind, data, state)  # may call MLflow: outside any transaction
    now = state.clock.now()
    out: dict[str, Any] = {"delivery_id": delivery_id, "event": kind}
    try:
        with state.sessions.begin() as session:
            if version is None:
                out.update(outcome="ignored", status="ignored")
            else:
                out.update(_register(session, state, version, now))
            session.add(
                MlflowDelivery(
                    delivery_id=delivery_id,
                    event=kind[:64],
                    registered_model=_text(data.get("name"), 256),
                    version=_text(data.get("version"), 64),
                    outcome=out["outcome"],
                    detail=None if version is None else f"{out['model']} {out['version']}",
                    received_at=now,
                )
            )
    except IntegrityError as exc:  # the same delivery, processed concurrently
        with state.sessions() as session:
            seen = session.scalar(
                select(MlflowDelivery).where(MlflowDelivery.delivery_id == delivery_id)
            )
        if seen is None:
            raise
        raise _replayed(seen) from exc
    if out["outcome"] == "registered":
        log.info("MLflow %s registered %s %s as challenger", kind, out["model"], out["version"])
        kick(state)
    return out


def _replayed(seen: MlflowDelivery) -> Refused:
    return Refused(
        409,
        "replayed",
        f"delivery {seen.delivery_id} was processed at {seen.received_at.isoformat()} "
        f"({seen.outcome}); nothing done again",
    )


def _announced(
    cfg: MlflowSettings, kind: str, data: dict[str, Any], state: MonitorState
) -> dict[str, Any] | None:
    """The model version the event asks to register (name, version, tags, run id), or None."""
    name, version = data.get("name"), data.get("version")
    if not isinstance(name, str) or not name or version is None:
        return None
    if kind == "model_version.created":
        tags = {str(k): str(v) for k, v in (data.get("tags") or {}).items()}
        flag = tags.get(cfg.challenger_tag, "").lower()
        wanted = (kind in cfg.register_on and flag not in ("false", "0", "no")) or (
            flag in TRUE and "model_version_tag.set" in cfg.register_on
        )
        if not wanted:
            return None
        return {
            "name": name,
            "version": str(version),
            "tags": tags,
            "run_id": data.get("run_id"),
            "source": data.get("source"),
        }
    if kind == "model_version_tag.set" and kind in cfg.register_on:
        if data.get("key") != cfg.challenger_tag or str(data.get("value", "")).lower() not in TRUE:
            return None
    elif kind == "model_version_alias.created" and kind in cfg.register_on:
        if not cfg.challenger_alias or data.get("alias") != cfg.challenger_alias:
            return None
    else:
        return None
    found: dict[str, Any] = {
        "name": name,
        "version": str(version),
        "tags": {},
        "run_id": None,
        "source": None,
    }
    if cfg.tracking_uri:  # the tag and alias events carry no tags or run id: ask MLflow
        rest = MlflowRest(
            state.http, cfg.tracking_uri, cfg, state.settings.webhooks.timeout_seconds
        )
        try:
            described = rest.model_version(name, str(version))
        except MlflowError as exc:
            # 503: MLflow retries the delivery (nothing was recorded for it).
            raise Refused(503, "mlflow_unreachable", str(exc)) from exc
        found.update(
            tags=described["tags"],
            run_id=described.get("run_id") or None,
            source=described.get("source"),
        )
    return found


def _register(
    session: Session, state: MonitorState, found: dict[str, Any], now: datetime
) -> dict[str, Any]:
    cfg = state.settings.mlflow
    name, mlflow_version, tags = found["name"], found["version"], found["tags"]
    target = tags.get("driftloop.model") or cfg.models.get(name) or name
    version = tags.get("driftloop.version") or mlflow_version
    url = tags.get("driftloop.url") or (
        cfg.url_template.format(name=name, model=target, version=mlflow_version)
        if cfg.url_template
        else None
    )
    try:
        model = get_model(session, target)
    except UnknownModelError as exc:
        raise Refused(
            404,
            "unmapped",
            f"registered model {name!r} maps to Driftloop model {target!r}, which does not "
            "exist: register it (POST /v1/models) or map the name in DRIFTLOOP_MLFLOW__MODELS",
        ) from exc
    try:
        registration = VersionRegistration(
            version=version,
            url=url,
            snapshot_id=tags.get("driftloop.snapshot_id"),
            trigger_id=tags.get("driftloop.trigger_id"),
            webhook_id=tags.get("driftloop.webhook_id"),
            code_revision=tags.get("driftloop.code_revision"),
            mlflow_run_id=found.get("run_id") or None,
            provenance={
                "mlflow": {
                    "name": name,
                    "version": mlflow_version,
                    "run_id": found.get("run_id"),
                    "source": found.get("source"),
                }
            },
            start_rollout=cfg.start_rollout,
        )
    except PydanticValidationError as exc:
        raise Refused(400, "malformed", f"cannot register {name} {mlflow_version}: {exc}") from exc
    try:
        described, created = register(session, state.settings, model, registration, now)
    except HTTPException as exc:
        outcome = "unmapped" if exc.status_code == 422 else "conflict"
        raise Refused(exc.status_code, outcome, str(exc.detail)) from exc
    if created:
        row = session.scalar(
            select(ModelVersion).where(
                ModelVersion.model_id == model.id, ModelVersion.version == version
            )
        )
        if row is not None:
            queue_registration(session, state.settings, model, row, now)
    return {
        "outcome": "registered" if created else "unchanged",
        "status": "registered" if created else "unchanged",
        "model": model.name,
        "version": version,
        "url": url,
        "rollout": described.get("rollout"),
    }


def _text(value: Any, limit: int) -> str | None:
    return None if value is None else str(value)[:limit]


def install(app: FastAPI, state: MonitorState) -> None:
    """Add the receiver, its counter, the MLflow sender of the outbox and the write-back job."""
    app.include_router(router)
    webhook_counter(state.registry)
    cfg = state.settings.mlflow
    deliverer = getattr(app.state, "webhook_deliverer", None)
    if deliverer is not None:
        deliverer.senders[EVENT_TYPE] = MlflowSender(lambda: state.http, state.settings)
    elif cfg.tracking_uri:
        log.warning("the webhook outbox is not installed: MLflow write-backs stay queued")
    if not cfg.tracking_uri:
        if cfg.webhook_secret:
            log.warning(
                "MLflow webhooks are received but verdicts are not written back: set "
                "DRIFTLOOP_MLFLOW__TRACKING_URI"
            )
        return
    seen = {"after": 0}

    def writeback(job_state: MonitorState) -> None:
        seen["after"] = queue_verdicts(job_state, seen["after"])
        _prune(job_state)

    state.jobs.add(VERDICT_JOB, cfg.writeback_interval_seconds, writeback)


def _prune(state: MonitorState) -> None:
    """Forget delivery ids older than the retention (their timestamps are stale by then)."""
    cutoff = state.clock.now() - timedelta(days=state.settings.mlflow.keep_deliveries_days)
    with state.sessions.begin() as session:
        session.execute(delete(MlflowDelivery).where(MlflowDelivery.received_at < cutoff))
