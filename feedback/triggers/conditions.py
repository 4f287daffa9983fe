"""The automatic conditions of a policy, each a check that returns its evidence when it holds.

The sources are other components' public functions, imported lazily: ``label_count`` and
``performance`` from ``driftloop.feedback``, ``latest_drift`` from
``driftloop.monitor.evaluation``. A source that is missing or fails makes its condition
"unknown" (logged), never a trigger. The estimated performance is handed in instead (an
:data:`EstimateReader`, given by the composition root): feedback never imports the monitor's
estimation.
"""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.feedback.triggers.policy import (
    LOSSES,
    DegradationRule,
    DriftRule,
    EstimatedDegradationRule,
)
from driftloop.jsonable import jsonable
from driftloop.store import Model, ModelVersion
from driftloop.store.dialect import dialect_of

log = logging.getLogger(__name__)

REASONS = ("manual", "schedule", "new_labels", "degradation", "estimated_degradation", "drift")
"""Why a trigger fired, as written in the webhook body."""

EstimateReader = Callable[[Session, Model], Any]
"""``(session, model)`` -> the model's ``performance.estimated`` section (None when the estimation
is off): ``{"groups": [{"version", "variant", "rows", "task", "metrics": {name: {"estimate",
"lower", "upper"}}, "reference": {name: value}, "reason"?}], ...}``."""


@dataclass
class Finding:
    """A condition that holds, with what shows it."""

    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


def source(module: str, name: str) -> Callable[..., Any] | None:
    """``module.name`` if that component is installed, else None."""
    try:
        found: Callable[..., Any] = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        log.debug("%s.%s is not available", module, name)
        return None
    return found


@contextmanager
def isolated(session: Session) -> Iterator[None]:
    """Run another component's query so that its failure leaves our transaction usable.

    On PostgreSQL a failed statement aborts the whole transaction, so the call runs in a
    savepoint; SQLite keeps the transaction usable by itself (and pysqlite's savepoints are
    unreliable), so there it runs as is.
    """
    with dialect_of(session).isolated(session):
        yield


def new_labels(
    session: Session, model: Model, threshold: int, since: datetime | None
) -> Finding | None:
    """At least ``threshold`` labeled rows arrived since ``since`` (the last trigger)."""
    count_fn = source("driftloop.feedback", "label_count")
    if count_fn is None:
        return None
    count = int(count_fn(session, model, since=since))
    if count < threshold:
        return None
    return Finding(
        "new_labels",
        {
            "new_labels": count,
            "threshold": threshold,
            "since": None if since is None else since.isoformat(),
        },
    )


def degradation(
    session: Session, model: Model, rule: DegradationRule, now: datetime
) -> Finding | None:
    """The primary metric's interval lies wholly on the wrong side of the threshold."""
    perf_fn = source("driftloop.feedback", "performance")
    if perf_fn is None:
        return None
    since = None if rule.window_seconds is None else now - timedelta(seconds=rule.window_seconds)
    result = perf_fn(session, model, since=since, until=now)
    version = _version_in_role(session, model, rule.variant)
    found = find_metric(result, rule.metric, rule.variant, version)
    if found is None:
        return None
    key, metric = found
    low, high = metric["interval"]
    if rule.below is not None:
        holds = high < rule.below
        threshold: dict[str, float | None] = {"below": rule.below}
    else:
        holds = low > (rule.above if rule.above is not None else math.inf)
        threshold = {"above": rule.above}
    if not holds:
        return None
    return Finding(
        "degradation",
        {
            "metric": metric["name"],
            "variant": rule.variant,
            "group": key,
            "value": metric.get("value"),
            "interval": [low, high],
            "n": metric.get("n"),
            **threshold,
            "window_seconds": rule.window_seconds,
        },
    )


def find_metric(
    result: Any, metric: str | None, variant: str, version: str | None = None
) -> tuple[str, dict[str, Any]] | None:
    """The group of ``performance(...)`` for ``variant`` (of ``version`` when it has one, else
    the one with the most labeled rows) whose ``metric`` (None: the primary one) has an
    interval; the metric comes back with ``name`` and ``interval`` added."""
    if not isinstance(result, Mapping):
        return None
    name = metric or result.get("primary_metric")
    versions = result.get("versions")
    if not isinstance(versions, Mapping) or not isinstance(name, str):
        return None
    candidates: list[tuple[bool, int, str, dict[str, Any]]] = []
    for ver, variants in versions.items():
        group = variants.get(variant) if isinstance(variants, Mapping) else None
        metrics = group.get("metrics") if isinstance(group, Mapping) else None
        value = metrics.get(name) if isinstance(metrics, Mapping) else None
        interval = _interval(value) if isinstance(value, Mapping) else None
        if value is None or interval is None:
            continue
        n = int(value.get("n") or 0)
        found = {**value, "name": name, "interval": interval}
        candidates.append((ver == version, n, f"{ver}/{variant}", found))
    if not candidates:
        return None
    _, _, key, found = max(candidates, key=lambda c: (c[0], c[1]))
    return key, found


def _interval(value: Mapping[str, Any]) -> list[float] | None:
    pair = (value.get("lower"), value.get("upper"))
    if pair[0] is None and isinstance(value.get("interval"), list | tuple):
        pair = tuple(value["interval"])[:2]
    out = [float(x) for x in pair if isinstance(x, int | float) and math.isfinite(x)]
    return out if len(out) == 2 else None


def _version_in_role(session: Session, model: Model, variant: str) -> str | None:
    role = "champion" if variant == "champion" else "challenger"
    return session.scalar(
        select(ModelVersion.version)
        .where(ModelVersion.model_id == model.id, ModelVersion.role == role)
        .order_by(ModelVersion.id.desc())
        .limit(1)
    )


def estimated_degradation(
    session: Session,
    model: Model,
    rule: EstimatedDegradationRule,
    estimates: EstimateReader | None,
) -> Finding | None:
    """The estimated metric's interval lies wholly more than ``threshold`` on the wrong side of
    the value realized on the reference (below it for a score, above it for a loss). Nothing
    holds when the model is not estimated or not estimable (its ``reason`` says why)."""
    if estimates is None:
        return None
    section = estimates(session, model)
    groups = section.get("groups") if isinstance(section, Mapping) else None
    version = _version_in_role(session, model, rule.variant)
    candidates = []
    for group in groups or []:
        if not isinstance(group, Mapping) or group.get("variant") != rule.variant:
            continue
        metrics, reference = group.get("metrics"), group.get("reference")
        if not isinstance(metrics, Mapping) or not isinstance(reference, Mapping):
            continue
        name = rule.metric or ("mae" if group.get("task") == "regression" else "accuracy")
        value, baseline = metrics.get(name), reference.get(name)
        if not isinstance(value, Mapping) or not isinstance(baseline, int | float):
            continue
        interval = _interval(value)
        if interval is None:
            continue
        # The group of the version now in the role, else the one with the most rows.
        rank = (group.get("version") == version, int(group.get("rows") or 0))
        candidates.append((rank, name, group, value.get("estimate"), interval, float(baseline)))
    if not candidates:
        return None
    _, name, group, estimate, (low, high), baseline = max(candidates, key=lambda c: c[0])
    loss = name in LOSSES
    limit = baseline + rule.threshold if loss else baseline - rule.threshold
    if not (low > limit if loss else high < limit):
        return None
    return Finding(
        "estimated_degradation",
        {
            "estimated": True,
            "metric": name,
            "variant": rule.variant,
            "group": f"{group.get('version')}/{rule.variant}",
            "estimate": estimate,
            "interval": [low, high],
            "reference": baseline,
            "threshold": rule.threshold,
            "limit": limit,
            "rows": group.get("rows"),
            "window": {"since": section.get("since"), "until": section.get("until")}
            if isinstance(section, Mapping)
            else None,
        },
    )


def drift(
    session: Session, model: Model, rule: DriftRule, now: datetime | None = None
) -> Finding | None:
    """The latest drift evaluation shows dataset drift, or drift in a named feature (a result
    older than its window, traffic having stopped, shows nothing: the incident closes)."""
    drift_fn = source("driftloop.monitor.evaluation", "latest_drift")
    if drift_fn is None:
        return None
    latest = drift_fn(session, model)
    if not isinstance(latest, Mapping):
        return None
    if now is not None and _stale(latest, now):
        return None
    drifted = drifted_features(latest.get("features") or [])
    named = sorted(set(rule.features) & set(drifted))
    dataset = bool(latest.get("dataset_drift")) and rule.dataset
    if not dataset and not named:
        return None
    evaluated = latest.get("evaluated_at")
    return Finding(
        "drift",
        {
            "dataset_drift": bool(latest.get("dataset_drift")),
            "drifted_share": latest.get("drifted_share"),
            "drifted_features": drifted,
            "watched_features": named,
            "evaluated_at": evaluated.isoformat() if isinstance(evaluated, datetime) else evaluated,
            "features": jsonable(latest.get("features") or []),
        },
    )


def _stale(latest: Mapping[str, Any], now: datetime) -> bool:
    """The result is older than its own window: no record since, the verdict no longer holds."""
    minutes, evaluated = latest.get("window_minutes"), latest.get("evaluated_at")
    if not minutes or evaluated is None:
        return False
    at = evaluated if isinstance(evaluated, datetime) else datetime.fromisoformat(str(evaluated))
    return (now - at).total_seconds() > 60.0 * float(minutes)


def drifted_features(features: Any) -> list[str]:
    """Names of drifted features from ``latest_drift``'s list (names, or dicts with a flag)."""
    out = []
    items = features.items() if isinstance(features, Mapping) else enumerate(features)
    for key, item in items:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, Mapping):
            name = (
                item.get("name") or item.get("feature") or (key if isinstance(key, str) else None)
            )
            flag = item.get("drifted", item.get("drift_detected", item.get("drift")))
            if name and flag:
                out.append(str(name))
    return out
