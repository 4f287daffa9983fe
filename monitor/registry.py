"""The model registry: models, their versions and roles, and their schemas."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from itertools import chain
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from driftloop.contract import ModelRegistration, ModelSchema, Record, Role, Variant
from driftloop.errors import UnknownModelError
from driftloop.monitor.inference import infer_from_records
from driftloop.store import Model, ModelVersion, RecordRow


def dialect_insert(session: Session, table: Any) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support for the session's database."""
    name = session.get_bind().dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)


def get_model(session: Session, name: str) -> Model:
    """The model called ``name``; raises :class:`UnknownModelError`."""
    model = session.scalar(select(Model).where(Model.name == name))
    if model is None:
        raise UnknownModelError(name)
    return model


def schema_of(model: Model) -> ModelSchema:
    """The model's schema as the contract type."""
    return ModelSchema.model_validate(model.schema)


def ensure_models(
    session: Session, records_by_model: dict[str, list[Record]], now: datetime
) -> dict[str, Model]:
    """Fetch the models of a batch, registering unknown ones with an inferred schema.

    Safe against concurrent batches registering the same model: the insert ignores conflicts and
    the row is read back.
    """
    names = sorted(records_by_model)
    found = {m.name: m for m in session.scalars(select(Model).where(Model.name.in_(names)))}
    missing = [n for n in names if n not in found]
    if missing:
        rows = [
            {
                "name": name,
                "schema": infer_from_records(records_by_model[name]).model_dump(mode="json"),
                "schema_source": "inferred",
                "created_at": now,
                "updated_at": now,
            }
            for name in missing
        ]
        session.execute(dialect_insert(session, Model).on_conflict_do_nothing(), rows)
        found.update(
            {m.name: m for m in session.scalars(select(Model).where(Model.name.in_(missing)))}
        )
    for name, model in found.items():
        if model.schema_source == "inferred" and name not in missing:
            _extend_inferred(model, records_by_model[name], now)
    return found


def _extend_inferred(model: Model, records: list[Record], now: datetime) -> None:
    current = schema_of(model)
    known = {f.name for f in current.features}
    classes = set(map(repr, current.prediction.classes or []))
    field = current.prediction.field
    # Set operations over the whole batch (this runs for every batch of an inferred model).
    novel = not known.issuperset(chain.from_iterable(r.inputs for r in records))
    if not novel:
        predicted = [r.outputs.get(field) for r in records]
        labels = {p for p in predicted if isinstance(p, str | int)}  # bool is an int
        novel = any(repr(p) not in classes for p in labels)
    if novel:
        model.schema = infer_from_records(records, base=current).model_dump(mode="json")
        model.updated_at = now


def ensure_versions(
    session: Session, model: Model, records: Iterable[Record], now: datetime
) -> None:
    """Register versions first seen in records (champion or challenger by their variant)."""
    seen: dict[str, str] = {}
    for record in records:
        role = Role.champion if record.variant is Variant.champion else Role.challenger
        seen.setdefault(record.version, role.value)
    rows = [
        {"model_id": model.id, "version": v, "role": r, "created_at": now} for v, r in seen.items()
    ]
    session.execute(dialect_insert(session, ModelVersion).on_conflict_do_nothing(), rows)


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
