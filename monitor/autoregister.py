"""Models and versions registered on first sight by ingest, with schemas inferred from records.

The registry itself (:mod:`driftloop.store.registry`) is shared; this is the monitor's use of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from itertools import chain

from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.contract import Record, Role, Variant
from driftloop.monitor.cardinality import check_new_models, check_new_versions
from driftloop.monitor.inference import infer_from_records
from driftloop.settings import IngestSettings
from driftloop.store import Model, ModelVersion
from driftloop.store.registry import dialect_insert, schema_of


def ensure_models(
    session: Session,
    records_by_model: dict[str, list[Record]],
    now: datetime,
    limits: IngestSettings | None = None,
) -> dict[str, Model]:
    """Fetch the models of a batch, registering unknown ones with an inferred schema.

    Safe against concurrent batches registering the same model: the insert ignores conflicts and
    the row is read back. With ``limits``, refuses (:class:`CardinalityError`) to register past
    the model cap.
    """
    names = sorted(records_by_model)
    found = {m.name: m for m in session.scalars(select(Model).where(Model.name.in_(names)))}
    missing = [n for n in names if n not in found]
    if missing and limits is not None:
        check_new_models(session, missing, limits)
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
    session: Session,
    model: Model,
    records: Iterable[Record],
    now: datetime,
    limits: IngestSettings | None = None,
) -> None:
    """Register versions first seen in records (champion or challenger by their variant).

    With ``limits``, refuses (:class:`CardinalityError`) to pass the per-model version cap.
    """
    seen: dict[str, str] = {}
    for record in records:
        role = Role.champion if record.variant is Variant.champion else Role.challenger
        seen.setdefault(record.version, role.value)
    if limits is not None:
        check_new_versions(session, model, set(seen), limits)
    rows = [
        {"model_id": model.id, "version": v, "role": r, "created_at": now} for v, r in seen.items()
    ]
    session.execute(dialect_insert(session, ModelVersion).on_conflict_do_nothing(), rows)
