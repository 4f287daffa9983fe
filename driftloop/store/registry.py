"""The model registry: models, their versions and roles, and their schemas.

Shared by every component (the monitor's API and ingest, feedback's callbacks and triggers, the
rollouts): what a model is lives with the tables that store it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from driftloop.contract import ModelRegistration, ModelSchema, Role
from driftloop.errors import UnknownModelError
from driftloop.store.dialect import dialect_of
from driftloop.store.tables import Model, ModelVersion, RecordRow

__all__ = [
    "dialect_insert",
    "get_model",
    "record_counts",
    "register",
    "schema_of",
    "set_version",
    "versions_of",
]


def dialect_insert(session: Session, table: Any) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support for the session's database (its dialect's)."""
    return dialect_of(session).insert(table)


def get_model(session: Session, name: str) -> Model:
    """The model called ``name``; raises :class:`UnknownModelError`."""
    model = session.scalar(select(Model).where(Model.name == name))
    if model is None:
        raise UnknownModelError(name)
    return model


def schema_of(model: Model) -> ModelSchema:
    """The model's schema as the contract type."""
    return ModelSchema.model_validate(model.schema)


def register(session: Session, body: ModelRegistration, now: datetime) -> tuple[Model, bool]:
    """Create or update a model from ``POST /v1/models``; also says whether it is new."""
    model = session.scalar(select(Model).where(Model.name == body.name))
    created = model is None
    if model is None:
        model = Model(
            name=body.name,
            schema=(body.model_schema or ModelSchema()).model_dump(mode="json"),
            schema_source="registered" if body.model_schema else "inferred",
            created_at=now,
            updated_at=now,
        )
        session.add(model)
        session.flush()
    elif body.model_schema is not None:
        model.schema = body.model_schema.model_dump(mode="json")
        model.schema_source = "registered"
        model.updated_at = now
    for spec in body.versions:
        set_version(session, model, spec.version, spec.role, spec.url, now)
    return model, created


def set_version(
    session: Session,
    model: Model,
    version: str,
    role: Role,
    url: str | None,
    now: datetime,
    provenance: dict[str, Any] | None = None,
) -> ModelVersion:
    """Upsert a version; a new champion retires the previous one."""
    row = session.scalar(
        select(ModelVersion).where(
            ModelVersion.model_id == model.id, ModelVersion.version == version
        )
    )
    if role is Role.champion:
        for other in session.scalars(
            select(ModelVersion).where(
                ModelVersion.model_id == model.id,
                ModelVersion.role == Role.champion.value,
                ModelVersion.version != version,
            )
        ):
            other.role = Role.retired.value
    if row is None:
        row = ModelVersion(model_id=model.id, version=version, created_at=now, role=role.value)
        session.add(row)
    row.role = role.value
    if url is not None:
        row.url = url
    if provenance is not None:
        row.provenance = provenance
    session.flush()
    return row


def versions_of(session: Session, model: Model) -> list[ModelVersion]:
    """The model's versions, oldest first."""
    return list(
        session.scalars(
            select(ModelVersion).where(ModelVersion.model_id == model.id).order_by(ModelVersion.id)
        )
    )


def record_counts(session: Session, model: Model) -> dict[str, Any]:
    """Total records and the count per version and variant."""
    rows = session.execute(
        select(RecordRow.version, RecordRow.variant, func.count())
        .where(RecordRow.model_id == model.id)
        .group_by(RecordRow.version, RecordRow.variant)
    ).all()
    by_version: dict[str, dict[str, int]] = {}
    for version, variant, count in rows:
        by_version.setdefault(version, {})[variant] = count
    return {"record_count": sum(r[2] for r in rows), "records_by_version": by_version}
