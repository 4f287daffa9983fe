"""Firing a trigger: snapshot the labeled data, log why, and queue the webhook — one transaction.

The caller owns the transaction: the trigger row and its outbox message commit together, so a
trigger the API acknowledged is delivered even if the monitor dies right after.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from driftloop.contract import Role
from driftloop.errors import DriftloopError
from driftloop.feedback.triggers.conditions import Finding, isolated, source
from driftloop.feedback.triggers.policy import RetrainingPolicy, webhook_url
from driftloop.feedback.webhooks.outbox import enqueue
from driftloop.settings import Settings
from driftloop.store import Model, ModelVersion, OutboxMessage, RetrainTrigger

log = logging.getLogger(__name__)

EVENT_TYPE = "model.retrain"


def fire(
    session: Session,
    model: Model,
    finding: Finding,
    *,
    policy: RetrainingPolicy,
    settings: Settings,
    now: datetime,
) -> tuple[RetrainTrigger, OutboxMessage | None]:
    """Record a trigger with its snapshot and queue its webhook (no commit)."""
    manifest, snapshot_error = take_snapshot(session, model, policy, settings, now)
    evidence = dict(finding.evidence)
    if snapshot_error is not None:
        evidence["snapshot_error"] = snapshot_error
    trigger = RetrainTrigger(
        model_id=model.id,
        reason=finding.reason,
        evidence=evidence,
        snapshot_id=None if manifest is None else str(manifest.get("snapshot_id")),
        manifest=manifest,
        fired_at=now,
    )
    session.add(trigger)
    session.flush()
    url = webhook_url(policy, settings)
    message = None
    if url is None:
        log.warning("retrain trigger %d of %s: no webhook URL configured", trigger.id, model.name)
    else:
        body = payload(session, model, trigger, settings)
        message = enqueue(
            session,
            model=model,
            url=url,
            payload=body,
            now=now,
            event_type=EVENT_TYPE,
            trigger_id=trigger.id,
        )
    log.info("retrain trigger %d of %s fired: %s", trigger.id, model.name, finding.reason)
    return trigger, message


def take_snapshot(
    session: Session, model: Model, policy: RetrainingPolicy, settings: Settings, now: datetime
) -> tuple[dict[str, Any] | None, str | None]:
    """The snapshot manifest of the policy's labeled rows, or the reason there is none."""
    create = source("driftloop.feedback", "create_snapshot")
    if create is None:
        return None, "dataset snapshots are not available (driftloop.feedback.create_snapshot)"
    window = policy.snapshot.window_seconds
    since = None if window is None else now - timedelta(seconds=window)
    out = f"{settings.snapshot_dir.rstrip('/')}/{model.name}"  # a folder or any fsspec URL
    try:
        with isolated(session):
            manifest = create(
                session,
                model,
                out=out,
                since=since,
                until=now,
                variant=policy.snapshot.variant,
                now=now,
            )
    except (DriftloopError, ValueError, OSError, SQLAlchemyError) as exc:
        log.warning("snapshot for %s failed: %s", model.name, exc)
        return None, f"{type(exc).__name__}: {exc}"
    return dict(manifest), None


def callback_url(settings: Settings, model: Model) -> str:
    """Where the training system registers the version it trained."""
    base = settings.retrain.callback_base_url or f"http://{settings.host}:{settings.port}"
    return f"{base.rstrip('/')}/v1/models/{model.name}/versions"


def payload(
    session: Session, model: Model, trigger: RetrainTrigger, settings: Settings
) -> dict[str, Any]:
    """The webhook body (ARCHITECTURE §4): model, reason, evidence, dataset manifest, callback."""
    manifest = trigger.manifest or {}
    champion = session.scalar(
        select(ModelVersion).where(
            ModelVersion.model_id == model.id, ModelVersion.role == Role.champion.value
        )
    )
    return {
        "type": EVENT_TYPE,
        "model": model.name,
        "reason": trigger.reason,
        "trigger_id": trigger.id,
        "fired_at": trigger.fired_at.isoformat(),
        "evidence": trigger.evidence,
        "dataset": {
            "snapshot_id": trigger.snapshot_id,
            "uri": manifest.get("uri"),
            "rows": manifest.get("rows"),
            "time_range": manifest.get("time_range"),
            "content_hash": _content_hash(manifest),
            "label_coverage": manifest.get("label_coverage"),
            "model_versions": manifest.get("model_versions"),
            "manifest": manifest or None,
        },
        "champion": None
        if champion is None
        else {"version": champion.version, "url": champion.url},
        "callback_url": callback_url(settings, model),
    }


def _content_hash(manifest: dict[str, Any]) -> str | None:
    digest = manifest.get("sha256") or manifest.get("content_hash")
    return None if digest is None else (digest if ":" in str(digest) else f"sha256:{digest}")
