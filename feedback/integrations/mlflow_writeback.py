"""Verdicts and lineage written back to MLflow through the durable webhook outbox.

Each write-back is one outbox message (``event_type`` ``mlflow.writeback``) whose body lists
idempotent MLflow operations (move an alias, set tags); the webhook delivery worker sends it with
:class:`MlflowSender` instead of a signed POST, so it gets the same claiming, retries with backoff,
attempt log, replay and endpoint disabling as the retraining webhooks, and nothing is lost while
MLflow is down. Message ids are derived from what they announce (the rollout decision, the
registered version), so queuing the same write-back twice is a no-op.

- registration (:func:`queue_registration`): alias ``challenger``, tag ``driftloop.status``;
- verdict (:func:`queue_verdicts`, the leader's job): on promotion alias ``champion``, on rollback
  alias ``rolled-back``; the ``challenger`` alias removed when it still points at the version;
  tags with the evidence (difference, interval, samples, reason);
- lineage (:func:`queue_lineage`): trigger, snapshot and dataset tags on the MLflow run.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.feedback.integrations.mlflow_rest import MlflowError, MlflowRest
from driftloop.feedback.webhooks.delivery import AttemptResult, kick
from driftloop.feedback.webhooks.outbox import enqueue
from driftloop.settings import MlflowSettings, Settings
from driftloop.store import (
    Model,
    ModelVersion,
    OutboxMessage,
    RetrainTrigger,
    Rollout,
    RolloutDecision,
)

if TYPE_CHECKING:
    from driftloop.web.state import MonitorState

log = logging.getLogger(__name__)

EVENT_TYPE = "mlflow.writeback"
VERDICTS = {"promote": "promoted", "rollback": "rolled_back", "superseded": "superseded"}
"""Rollout decisions written back, and the verdict each becomes."""
STATUS = {"promoted": "champion", "rolled_back": "rolled_back", "superseded": "superseded"}


def mlflow_of(row: ModelVersion | None) -> dict[str, Any] | None:
    """The MLflow registered model and version a Driftloop version came from, if it did."""
    found = ((row.provenance or {}) if row is not None else {}).get("mlflow")
    if isinstance(found, dict) and found.get("name") and found.get("version"):
        return found
    return None


def queue(
    session: Session,
    settings: Settings,
    model: Model,
    message_id: str,
    operations: list[dict[str, Any]],
    now: datetime,
) -> OutboxMessage | None:
    """Put ``operations`` in the outbox under ``message_id``, unless it is there already."""
    uri = settings.mlflow.tracking_uri
    if not uri or not operations:
        return None
    if session.scalar(select(OutboxMessage.id).where(OutboxMessage.webhook_id == message_id)):
        return None
    return enqueue(
        session,
        model=model,
        url=uri.rstrip("/"),
        payload={"operations": operations},
        now=now,
        event_type=EVENT_TYPE,
        webhook_id=message_id,
    )


def queue_registration(
    session: Session, settings: Settings, model: Model, row: ModelVersion, now: datetime
) -> OutboxMessage | None:
    """Tell MLflow the version is in rollout: the in-rollout alias and a status tag."""
    source = mlflow_of(row)
    if source is None:
        return None
    name, version = str(source["name"]), str(source["version"])
    tags = {
        "driftloop.status": "in_rollout",
        "driftloop.model": model.name,
        "driftloop.version": row.version,
    }
    ops = _tags(name, version, tags)
    if settings.mlflow.in_rollout_alias:
        ops.append(
            {
                "op": "set_alias",
                "name": name,
                "alias": settings.mlflow.in_rollout_alias,
                "version": version,
            }
        )
    return queue(session, settings, model, f"mlflow-register-{row.id}", ops, now)


def verdict_operations(
    settings: MlflowSettings,
    source: dict[str, Any],
    model: Model,
    rollout: Rollout,
    decision: RolloutDecision,
) -> list[dict[str, Any]]:
    """The alias moves and evidence tags of one promotion or rollback."""
    name, version = str(source["name"]), str(source["version"])
    verdict = VERDICTS[decision.decision]
    # The alias moves last: whoever sees it move finds the evidence on the version already.
    ops = _tags(name, version, evidence_tags(model, rollout, decision, verdict))
    if settings.in_rollout_alias:
        ops.append(
            {
                "op": "delete_alias_if",
                "name": name,
                "alias": settings.in_rollout_alias,
                "version": version,
            }
        )
    alias = {"promoted": settings.champion_alias, "rolled_back": settings.rolled_back_alias}.get(
        verdict
    )
    if alias:
        ops.append({"op": "set_alias", "name": name, "alias": alias, "version": version})
    return ops


def evidence_tags(
    model: Model, rollout: Rollout, decision: RolloutDecision, verdict: str
) -> dict[str, str]:
    """``driftloop.*`` tags: the verdict, its reason and the evidence it was made on."""
    evidence = decision.evidence or {}
    difference = evidence.get("difference") or {}
    samples = evidence.get("samples") or {}
    tags = {
        "driftloop.status": STATUS[verdict],
        "driftloop.verdict": verdict,
        "driftloop.reason": decision.reason,
        "driftloop.decided_by": decision.actor,
        "driftloop.decided_at": decision.decided_at.isoformat(),
        "driftloop.model": model.name,
        "driftloop.version": rollout.challenger_version,
        "driftloop.compared_with": rollout.champion_version,
        "driftloop.rollout_id": str(rollout.id),
    }
    if evidence.get("metric"):
        tags["driftloop.metric"] = str(evidence["metric"])
    if difference.get("estimate") is not None:
        tags["driftloop.difference"] = _num(difference["estimate"])
    lower, upper = difference.get("running_lower"), difference.get("running_upper")
    if lower is not None or upper is not None:
        tags["driftloop.interval"] = f"[{_num(lower)}, {_num(upper)}]"
    if evidence.get("margin") is not None:
        tags["driftloop.margin"] = _num(evidence["margin"])
    if samples:
        tags["driftloop.samples"] = json.dumps(
            {k: samples[k] for k in ("champion", "challenger") if k in samples}, sort_keys=True
        )
    return tags


def queue_verdicts(state: MonitorState, after: int, limit: int = 200) -> int:
    """Queue the write-back of every promotion or rollback with an id above ``after``.

    Returns the highest decision id looked at (the next call's ``after``). Decisions of versions
    that did not come from MLflow are passed over.
    """
    settings = state.settings
    with state.sessions.begin() as session:
        decisions = list(
            session.scalars(
                select(RolloutDecision)
                .where(RolloutDecision.id > after, RolloutDecision.decision.in_(tuple(VERDICTS)))
                .order_by(RolloutDecision.id)
                .limit(limit)
            )
        )
        queued = 0
        for decision in decisions:
            after = decision.id
            rollout = session.get(Rollout, decision.rollout_id)
            model = session.get(Model, decision.model_id)
            if rollout is None or model is None:
                continue
            row = session.scalar(
                select(ModelVersion).where(
                    ModelVersion.model_id == model.id,
                    ModelVersion.version == rollout.challenger_version,
                )
            )
            source = mlflow_of(row)
            if source is None:
                continue
            ops = verdict_operations(settings.mlflow, source, model, rollout, decision)
            message_id = f"mlflow-verdict-{decision.id}"
            if queue(session, settings, model, message_id, ops, state.clock.now()) is not None:
                queued += 1
                log.info(
                    "MLflow write-back queued: %s version %s %s",
                    source["name"],
                    source["version"],
                    VERDICTS[decision.decision],
                )
    if queued:
        kick(state)
    return after


def lineage_tags(
    session: Session, settings: Settings, model: Model, row: ModelVersion
) -> dict[str, str]:
    """Tags that lead from an MLflow run to the production rows its model trained on."""
    provenance = row.provenance or {}
    tags = {"driftloop.model": model.name, "driftloop.version": row.version}
    for key in ("trigger_id", "webhook_id", "snapshot_id", "code_revision"):
        if provenance.get(key) is not None:
            tags[f"driftloop.{key}"] = str(provenance[key])
    manifest = _manifest(session, provenance)
    if manifest is not None:
        for key, tag in (
            ("uri", "dataset_uri"),
            ("rows", "dataset_rows"),
            ("sha256", "dataset_sha256"),
        ):
            if manifest.get(key) is not None:
                tags[f"driftloop.{tag}"] = str(manifest[key])
        span = manifest.get("time_range") or {}
        if span.get("first") or span.get("last"):
            tags["driftloop.dataset_time_range"] = f"{span.get('first')}/{span.get('last')}"
    base = settings.retrain.callback_base_url
    if base:
        tags["driftloop.lineage_url"] = (
            f"{base.rstrip('/')}/v1/models/{model.name}/versions/{row.version}/lineage"
        )
    return tags


def queue_lineage(
    session: Session,
    settings: Settings,
    model: Model,
    row: ModelVersion,
    run_id: str,
    now: datetime,
) -> OutboxMessage | None:
    """Queue Driftloop's lineage of ``row`` as tags on MLflow run ``run_id``."""
    ops = [
        {
            "op": "set_run_tags",
            "run_id": run_id,
            "tags": lineage_tags(session, settings, model, row),
        }
    ]
    return queue(session, settings, model, f"mlflow-lineage-{row.id}", ops, now)


class MlflowSender:
    """Runs the operations of one write-back message against MLflow (the outbox's sender)."""

    def __init__(self, http: Callable[[], httpx.Client], settings: Settings) -> None:
        self._http = http
        self.settings = settings

    def __call__(self, url: str, message_id: str, body: str) -> AttemptResult:
        """Apply every operation in order (each is idempotent, so a retry redoes them all)."""
        rest = MlflowRest(
            self._http(), url, self.settings.mlflow, self.settings.webhooks.timeout_seconds
        )
        start = time.perf_counter()
        try:
            for op in json.loads(body)["operations"]:
                apply(rest, op)
        except MlflowError as exc:
            log.warning("MLflow write-back %s: %s", message_id, exc)
            return AttemptResult(exc.status, str(exc), time.perf_counter() - start)
        except (KeyError, TypeError, ValueError) as exc:
            return AttemptResult(
                None, f"malformed write-back: {exc!r}", time.perf_counter() - start
            )
        return AttemptResult(200, None, time.perf_counter() - start)


def apply(rest: MlflowRest, op: dict[str, Any]) -> None:
    """One write-back operation."""
    kind = op["op"]
    if kind == "set_alias":
        rest.set_alias(op["name"], op["alias"], op["version"])
    elif kind == "delete_alias_if":
        if rest.alias_version(op["name"], op["alias"]) == op["version"]:
            rest.delete_alias(op["name"], op["alias"])
    elif kind == "set_version_tag":
        rest.set_version_tag(op["name"], op["version"], op["key"], op["value"])
    elif kind == "set_run_tags":
        rest.set_run_tags(op["run_id"], op["tags"])
    else:
        raise ValueError(f"unknown operation {kind!r}")


def _tags(name: str, version: str, tags: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"op": "set_version_tag", "name": name, "version": version, "key": k, "value": v}
        for k, v in tags.items()
    ]


def _num(value: Any) -> str:
    return "none" if value is None else f"{float(value):.6g}"


def _manifest(session: Session, provenance: dict[str, Any]) -> dict[str, Any] | None:
    snapshot_id = provenance.get("snapshot_id")
    if isinstance(snapshot_id, str):
        from driftloop.feedback.snapshots import get_snapshot

        found = get_snapshot(session, snapshot_id)
        if found is not None:
            return found
    trigger_id = provenance.get("trigger_id")
    trigger = session.get(RetrainTrigger, trigger_id) if isinstance(trigger_id, int) else None
    return None if trigger is None or trigger.manifest is None else dict(trigger.manifest)
