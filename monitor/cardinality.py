"""Bounded cardinality: what one ingest client may make the monitor track.

Every model and version that ingest registers on its own adds series to ``/metrics``, rows to the
status page and work to every periodic job. So ingest registers a new model only while fewer than
``ingest.max_models`` exist, a new version only while its model has fewer than
``ingest.max_versions_per_model``, and one batch may name at most
``ingest.max_versions_per_batch`` (model, version) pairs. Beyond a cap the batch gets a 422 that
names the cap and the setting; an admin registers more with ``POST /v1/models``.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from driftloop.contract import Record
from driftloop.errors import ValidationError
from driftloop.settings import IngestSettings
from driftloop.store import Model, ModelVersion

__all__ = ["CardinalityError", "check_batch_versions", "check_new_models", "check_new_versions"]


class CardinalityError(ValidationError):
    """A batch would make the monitor track more models or versions than its caps allow."""

    def __init__(self, message: str, cap: str, limit: int) -> None:
        super().__init__(message, [{"cap": cap, "limit": limit}])
        self.cap = cap
        self.limit = limit


def check_batch_versions(records: Iterable[Record], limits: IngestSettings) -> None:
    """Refuse a batch naming more distinct (model, version) pairs than the cap."""
    pairs = {(r.model, r.version) for r in records}
    cap = limits.max_versions_per_batch
    if len(pairs) > cap:
        raise CardinalityError(
            f"the batch names {len(pairs)} (model, version) pairs, over the cap of {cap} per "
            "batch (DRIFTLOOP_INGEST__MAX_VERSIONS_PER_BATCH): split it",
            "max_versions_per_batch",
            cap,
        )


def check_new_models(session: Session, missing: list[str], limits: IngestSettings) -> None:
    """Refuse to auto-register ``missing`` models when that passes the model cap."""
    if not missing:
        return
    cap = limits.max_models
    existing = session.scalar(select(func.count()).select_from(Model)) or 0
    if existing + len(missing) > cap:
        shown = ", ".join(repr(n) for n in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise CardinalityError(
            f"the batch names {len(missing)} unknown model(s) ({shown}) and {existing} models "
            f"exist: ingest registers at most {cap} models (DRIFTLOOP_INGEST__MAX_MODELS); "
            "register more with POST /v1/models (admin)",
            "max_models",
            cap,
        )


def check_new_versions(
    session: Session, model: Model, versions: set[str], limits: IngestSettings
) -> None:
    """Refuse to auto-register versions of ``model`` past the per-model version cap."""
    known = set(
        session.scalars(
            select(ModelVersion.version).where(
                ModelVersion.model_id == model.id, ModelVersion.version.in_(sorted(versions))
            )
        )
    )
    new = versions - known
    if not new:
        return
    cap = limits.max_versions_per_model
    existing = (
        session.scalar(
            select(func.count()).select_from(ModelVersion).where(ModelVersion.model_id == model.id)
        )
        or 0
    )
    if existing + len(new) > cap:
        shown = ", ".join(repr(v) for v in sorted(new)[:5])
        raise CardinalityError(
            f"model {model.name!r} has {existing} versions and the batch names {len(new)} new "
            f"one(s) ({shown}): ingest registers at most {cap} versions per model "
            "(DRIFTLOOP_INGEST__MAX_VERSIONS_PER_MODEL); register more with POST /v1/models",
            "max_versions_per_model",
            cap,
        )
