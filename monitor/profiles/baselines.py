"""A per-process cache of each model's baseline (reference statistics and profile layout).

A baseline depends on a reference dataset and the model's schema; the reference in force for a
version is looked up on every use (indexed queries) and a baseline is rebuilt only when the
reference or the schema changes. Replicas build identical layouts from the same data, so they
agree on fingerprints without coordination.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterable

from sqlalchemy.orm import Session

from driftloop.contract import ModelSchema
from driftloop.errors import DatasetError
from driftloop.monitor.profiles.build import ModelBaseline, build_baseline
from driftloop.store import Model, ReferenceDataset

__all__ = ["BaselineCache"]

log = logging.getLogger(__name__)


class BaselineCache:
    """Baselines by model and reference, rebuilt when the reference or the schema changes.

    ``get(session, model, version)`` is the baseline of that version: its own reference's when it
    brought one, else the model's default (see :func:`driftloop.store.reference.reference_for`).
    """

    def __init__(self, *, ood_margin: float = 0.5) -> None:
        self.ood_margin = ood_margin
        self._items: dict[tuple[int, int], tuple[str, ModelBaseline | None]] = {}
        self._lock = threading.Lock()

    def get(
        self, session: Session, model: Model, version: str | None = None
    ) -> ModelBaseline | None:
        """The baseline ``version`` is compared with, or None without a usable reference."""
        return self.for_versions(session, model, [version])[version]

    def for_versions(
        self, session: Session, model: Model, versions: Iterable[str | None]
    ) -> dict[str | None, ModelBaseline | None]:
        """Baselines of several versions (None: the model's default), in two queries."""
        from driftloop.store.reference import reference_ids

        own, default = reference_ids(session, model)
        in_use = {*own.values(), default}
        with self._lock:  # references no version uses any more free their memory
            for key in [k for k in self._items if k[0] == model.id and k[1] not in in_use]:
                del self._items[key]
        out: dict[str | None, ModelBaseline | None] = {}
        for version in versions:
            chosen = own.get(version, default) if version is not None else default
            out[version] = None if chosen is None else self._cached(session, model, chosen)
        return out

    def _cached(self, session: Session, model: Model, reference_id: int) -> ModelBaseline | None:
        schema_key = hashlib.sha256(json.dumps(model.schema, sort_keys=True).encode()).hexdigest()
        key = (model.id, reference_id)
        with self._lock:
            cached = self._items.get(key)
            if cached is not None and cached[0] == schema_key:
                return cached[1]
        baseline = self._build(session, model, reference_id)
        with self._lock:
            self._items[key] = (schema_key, baseline)
        return baseline

    def _build(self, session: Session, model: Model, reference_id: int) -> ModelBaseline | None:
        from driftloop.store.reference import read_dataset

        row = session.get(ReferenceDataset, reference_id)
        if row is None:
            return None
        try:
            frame = read_dataset(row.content)
            return build_baseline(
                reference_id,
                frame,
                ModelSchema.model_validate(model.schema),
                ood_margin=self.ood_margin,
            )
        except (DatasetError, ValueError) as exc:
            # A reference we cannot use must not stop ingest; drift stays off until a new one.
            log.warning(
                "model %s: reference %s unusable for drift: %s", model.name, reference_id, exc
            )
            return None
