"""Label ingest: resolve each label's model, check its type, upsert it, count corrections.

A label names its model or not. When it does not, the model is the one whose records (or earlier
labels) show the request id; when none does yet, the label is kept *pending* (``model_id = 0``)
and the join at query time matches it to the model that later logs the request id. A request id
shown by several models is ambiguous and refused. Everything happens in the caller's transaction,
and every refusal is collected first, so a bad row leaves nothing written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from driftloop.contract import Label, ModelSchema, PredictionKind
from driftloop.errors import ValidationError
from driftloop.store import LabelRow, Model, RecordRow
from driftloop.store.dialect import dialect_of
from driftloop.store.feedback import PENDING_MODEL

MAX_LISTED_ERRORS = 100


@dataclass
class LabelResult:
    """What one upload did, overall and per model name (``""`` for pending labels)."""

    received: int = 0
    stored: int = 0
    corrected: int = 0
    duplicates: int = 0
    pending: int = 0
    by_model: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, model: str, outcome: str) -> None:
        """Add one label of ``model`` with ``outcome`` (new, corrected, duplicate)."""
        per = self.by_model.setdefault(model, {"new": 0, "corrected": 0, "duplicate": 0})
        per[outcome] += 1

    def as_dict(self) -> dict[str, Any]:
        """The JSON body answered to the sender."""
        return {
            "received": self.received,
            "stored": self.stored,
            "corrected": self.corrected,
            "duplicates": self.duplicates,
            "pending": self.pending,
        }


def same_value(a: Any, b: Any) -> bool:
    """True when two labels are the same value *and* kind (``True`` is not ``1``)."""
    if type(a) is type(b):
        return bool(a == b)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return type(a) is type(b) and bool(a == b)


def _key(value: Any) -> tuple[str, Any]:
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", float(value))
    return (type(value).__name__, value)


class Conformer:
    """Maps labels to the model's label type in O(1) per label (see :func:`conform`).

    With ``known_classes_only=False`` (schemas inferred from the predictions seen so far, whose
    class list is a guess) an unknown class is kept as it is instead of refused.
    """

    def __init__(self, schema: ModelSchema, *, known_classes_only: bool = True) -> None:
        prediction = schema.prediction
        self.known_classes_only = known_classes_only
        self.regression = prediction.kind is PredictionKind.regression
        self.classes = list(prediction.classes or [])
        self.exact = {_key(c): c for c in self.classes}
        by_text: dict[str, list[Any]] = {}
        for known in self.classes:
            by_text.setdefault(str(known), []).append(known)
        self.by_text = {text: found[0] for text, found in by_text.items() if len(found) == 1}

    def __call__(self, value: Any) -> Any:
        """Return ``value`` as the model's label type, or raise ``ValueError`` saying why not."""
        if self.regression:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"label {value!r} is not a number and the model is a regression")
            return float(value)
        if not self.classes:
            return value
        found = self.exact.get(_key(value), _MISSING)
        if found is _MISSING:
            found = self.by_text.get(str(value), _MISSING)
        if found is _MISSING and not self.known_classes_only:
            return value
        if found is _MISSING:
            shown = self.classes if len(self.classes) <= 20 else [*self.classes[:20], "..."]
            raise ValueError(f"label {value!r} is not a class of the model (classes: {shown})")
        return found


_MISSING = object()


def conformer(model: Model) -> Conformer:
    """The label checker of ``model``: strict about classes unless its schema is inferred."""
    return Conformer(
        ModelSchema.model_validate(model.schema),
        known_classes_only=model.schema_source != "inferred",
    )


def conform(value: Any, schema: ModelSchema) -> Any:
    """Return ``value`` as the model's label type, or raise ``ValueError`` saying why not.

    Regression labels must be numbers (booleans are not); classification labels must be one of
    the declared classes, matched by value and kind, or failing that by their text (``"1"`` is
    class ``1`` when no other class reads ``1``). Without declared classes anything goes.
    """
    return Conformer(schema)(value)


def _among(session: Session, column: Any, values: Sequence[str]) -> Iterable[ColumnElement[bool]]:
    """``column IN values`` as few statements as the database handles well (one array parameter
    on PostgreSQL, chunks on SQLite): see ``Dialect.among``."""
    return dialect_of(session).among(column, values)


def _owners(session: Session, request_ids: Sequence[str]) -> dict[str, set[int]]:
    """Models whose records or labels show each request id."""
    owners: dict[str, set[int]] = {}
    for table in (RecordRow.__table__, LabelRow.__table__):
        for condition in _among(session, table.c.request_id, request_ids):
            rows = session.connection().execute(
                select(table.c.model_id, table.c.request_id)
                .where(condition, table.c.model_id != PENDING_MODEL)
                .distinct()
            )
            for model_id, request_id in rows.all():
                owners.setdefault(request_id, set()).add(model_id)
    return owners


@dataclass(frozen=True)
class _Prior:
    label: Any
    corrections: int
    received_at: datetime


def _existing(session: Session, request_ids: Sequence[str]) -> dict[tuple[int, str], _Prior]:
    out: dict[tuple[int, str], _Prior] = {}
    table = LabelRow.__table__
    for condition in _among(session, table.c.request_id, request_ids):
        rows = session.connection().execute(
            select(
                table.c.model_id,
                table.c.request_id,
                table.c.label,
                table.c.corrections,
                table.c.received_at,
            ).where(condition)
        )
        for model_id, request_id, label, corrections, received_at in rows.all():
            out[(model_id, request_id)] = _Prior(label, corrections, received_at)
    return out


def store_labels(session: Session, labels: Sequence[Label], now: datetime) -> LabelResult:
    """Upsert ``labels`` in the caller's transaction.

    Raises :class:`ValidationError` naming every refused row (unknown model, ambiguous request id,
    wrong label type) before anything is written.
    """
    result = LabelResult(received=len(labels))
    names = sorted({label.model for label in labels if label.model is not None})
    models = {m.name: m for m in session.scalars(select(Model).where(Model.name.in_(names)))}
    by_id = {m.id: m for m in models.values()}
    unscoped = sorted({label.request_id for label in labels if label.model is None})
    owners = _owners(session, unscoped) if unscoped else {}
    if owners:
        extra = {i for ids in owners.values() for i in ids} - set(by_id)
        by_id.update({m.id: m for m in session.scalars(select(Model).where(Model.id.in_(extra)))})
    schemas = {i: conformer(m) for i, m in by_id.items()}

    errors: list[dict[str, object]] = []
    final: dict[tuple[int, str], tuple[Any, datetime]] = {}
    for row, label in enumerate(labels):
        problem, model_id, value = _resolve(label, models, owners, by_id, schemas)
        if problem is not None:
            errors.append({"row": row, "request_id": label.request_id, "problem": problem})
            continue
        key = (model_id, label.request_id)
        if key in final:
            result.duplicates += 1
            result.count(by_id[model_id].name if model_id else "", "duplicate")
        final[key] = (value, label.timestamp or now)
    if errors:
        listed = "; ".join(
            f"row {e['row']} ({e['request_id']}): {e['problem']}" for e in errors[:5]
        )
        raise ValidationError(
            f"{len(errors)} of {len(labels)} labels refused, nothing stored: {listed}",
            errors[:MAX_LISTED_ERRORS],
        )
    _write(session, final, by_id, result, now)
    return result


def _resolve(
    label: Label,
    models: dict[str, Model],
    owners: dict[str, set[int]],
    by_id: dict[int, Model],
    schemas: dict[int, Conformer],
) -> tuple[str | None, int, Any]:
    if label.model is not None:
        model = models.get(label.model)
        if model is None:
            return f"unknown model {label.model!r}", 0, None
        model_id = model.id
    else:
        found = owners.get(label.request_id, set())
        if len(found) > 1:
            shown = sorted(by_id[i].name for i in found)
            return f"request id logged by several models {shown}; name one in 'model'", 0, None
        if not found:
            return None, PENDING_MODEL, label.label
        model_id = next(iter(found))
    try:
        return None, model_id, schemas[model_id](label.label)
    except ValueError as exc:
        return f"model {by_id[model_id].name!r}: {exc}", model_id, None


def _write(
    session: Session,
    final: dict[tuple[int, str], tuple[Any, datetime]],
    by_id: dict[int, Model],
    result: LabelResult,
    now: datetime,
) -> None:
    existing = _existing(session, sorted({rid for _, rid in final}))
    rows: list[dict[str, Any]] = []
    adopted: list[str] = []
    for (model_id, request_id), (value, label_ts) in final.items():
        name = by_id[model_id].name if model_id else ""
        prior = existing.get((model_id, request_id))
        pending = None if model_id == PENDING_MODEL else existing.get((0, request_id))
        if pending is not None:
            adopted.append(request_id)
        earlier = prior or pending
        if prior is not None and same_value(prior.label, value):
            result.duplicates += 1
            result.count(name, "duplicate")
            continue
        corrections = 0
        if earlier is not None:
            corrections = earlier.corrections + int(not same_value(earlier.label, value))
        if earlier is not None and not same_value(earlier.label, value):
            result.corrected += 1
            result.count(name, "corrected")
        else:
            result.stored += 1
            result.count(name, "new")
        result.pending += model_id == PENDING_MODEL
        rows.append(
            {
                "model_id": model_id,
                "request_id": request_id,
                "label": value,
                "label_ts": label_ts,
                "received_at": earlier.received_at if earlier is not None else now,
                "updated_at": now,
                "corrections": corrections,
            }
        )
    if adopted:
        table = cast(Table, LabelRow.__table__)
        for condition in _among(session, table.c.request_id, adopted):
            session.connection().execute(
                delete(table).where(table.c.model_id == PENDING_MODEL, condition)
            )
    if rows:
        dialect_of(session).upsert(
            session.connection(),
            cast(Table, LabelRow.__table__),
            rows,
            key=["model_id", "request_id"],
            update=["label", "label_ts", "updated_at", "corrections"],
        )
