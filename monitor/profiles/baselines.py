"""A per-process cache of each model's baseline (reference statistics and profile layout).

The baseline depends on the newest reference dataset and the model's schema; both are checked on
every use (one indexed query) and the baseline is rebuilt only when either changes. Replicas build
identical layouts from the same data, so they agree on fingerprints without coordination.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from driftloop.contract import ModelSchema
from driftloop.errors import DatasetError
from driftloop.monitor.profiles.build import ModelBaseline, build_baseline
from driftloop.store import Model, ReferenceDataset

__all__ = ["BaselineCache"]

log = logging.getLogger(__name__)


class BaselineCache:
    """Baselines by model id, rebuilt when the reference or the schema changes."""

    def __init__(self, *, ood_margin: float = 0.5) -> None:
        self.ood_margin = ood_margin
        self._items: dict[int, tuple[tuple[int, str], ModelBaseline | None]] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, model: Model) -> ModelBaseline | None:
        """The model's baseline, or None when it has no usable reference dataset."""
        reference_id = session.scalar(
            select(func.max(ReferenceDataset.id)).where(ReferenceDataset.model_id == model.id)
        )
        if reference_id is None:
            return None
        schema_key = hashlib.sha256(json.dumps(model.schema, sort_keys=True).encode()).hexdigest()
        key = (int(reference_id), schema_key)
        with self._lock:
            cached = self._items.get(model.id)
            if cached is not None and cached[0] == key:
                return cached[1]
        baseline = self._build(session, model, int(reference_id))
        with self._lock:
            self._items[model.id] = (key, baseline)
        return baseline

    def _build(self, session: Session, model: Model, reference_id: int) -> ModelBaseline | None:
        from driftloop.monitor.reference import read_dataset

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
