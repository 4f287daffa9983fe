"""The slot layout of a profile vector, and how records are counted into it.

A profile is one float64 vector per (model, version, variant, time bucket). It starts with a
header ``[records, ood_records]`` followed by one block per feature (and one for the prediction):

- numerical: ``k+2`` bin counts on the reference quantile grid (below, k inside, above), then
  ``missing, type_errors, ood, sum, sum_squares, sum_below, sum_above``;
- categorical: one count per reference category plus the unseen bucket, then
  ``missing, type_errors, ood``.

Vectors of the same layout add up, so a window of any length is the sum of its buckets. The
layout is derived deterministically from the reference data and the schema; its fingerprint
keys the stored profiles, so a new reference starts new profiles instead of mixing grids.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftloop.contract import FeatureKind
from driftloop.monitor.drift.reference import (
    CategoricalReference,
    NumericalReference,
    bin_index,
    category_key,
)
from driftloop.monitor.quality.guard import numeric_ood

__all__ = ["HEADER", "NUMERIC_EXTRAS", "Block", "ProfileLayout"]

HEADER = ("records", "ood_records")
NUMERIC_EXTRAS = ("missing", "type_errors", "ood", "sum", "sum_squares", "sum_below", "sum_above")
CATEGORICAL_EXTRAS = ("missing", "type_errors", "ood")


@dataclass(frozen=True, eq=False)
class Block:
    """One feature's (or the prediction's) slots in the profile vector."""

    name: str
    role: str  # "feature" | "prediction"
    ref: NumericalReference | CategoricalReference
    offset: int
    bins: int  # count slots
    has_reference: bool = True

    @property
    def kind(self) -> FeatureKind:
        """Numerical or categorical."""
        return self.ref.kind

    @property
    def size(self) -> int:
        """Slots this block takes."""
        extras = NUMERIC_EXTRAS if self.kind is FeatureKind.numerical else CATEGORICAL_EXTRAS
        return self.bins + len(extras)

    def counts(self, vector: NDArray[np.float64]) -> NDArray[np.float64]:
        """The count slots of this block in ``vector``."""
        return vector[self.offset : self.offset + self.bins]

    def extra(self, vector: NDArray[np.float64], name: str) -> float:
        """One named extra slot (``missing``, ``ood``, ``sum``...)."""
        extras = NUMERIC_EXTRAS if self.kind is FeatureKind.numerical else CATEGORICAL_EXTRAS
        return float(vector[self.offset + self.bins + extras.index(name)])


class ProfileLayout:
    """Blocks for every feature and the prediction, with an ood rule and a fingerprint."""

    def __init__(
        self,
        features: Sequence[NumericalReference | CategoricalReference],
        prediction: NumericalReference | CategoricalReference | None = None,
        *,
        prediction_has_reference: bool = True,
        ood_margin: float = 0.5,
    ) -> None:
        self.ood_margin = ood_margin
        blocks: list[Block] = []
        offset = len(HEADER)
        parts: list[tuple[str, str, NumericalReference | CategoricalReference, bool]] = [
            (ref.name, "feature", ref, True) for ref in features
        ]
        if prediction is not None:
            parts.append((prediction.name, "prediction", prediction, prediction_has_reference))
        for name, role, ref, has_ref in parts:
            bins = ref.counts.size
            block = Block(name, role, ref, offset, bins, has_ref)
            blocks.append(block)
            offset += block.size
        self.blocks = blocks
        self.size = offset
        self.fingerprint = self._fingerprint()

    @property
    def features(self) -> list[Block]:
        """Blocks of the input features."""
        return [b for b in self.blocks if b.role == "feature"]

    @property
    def prediction(self) -> Block | None:
        """The prediction's block, if the model's predictions are profiled."""
        return next((b for b in self.blocks if b.role == "prediction"), None)

    def _fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update(json.dumps([self.ood_margin, self.size]).encode())
        for b in self.blocks:
            digest.update(json.dumps([b.name, b.role, b.kind.value, b.bins]).encode())
            if isinstance(b.ref, NumericalReference):
                digest.update(b.ref.edges.tobytes())
            else:
                digest.update("\x00".join(b.ref.categories).encode())
        return digest.hexdigest()[:32]

    def count(
        self, inputs: Sequence[dict[str, Any]], outputs: Sequence[dict[str, Any]] | None = None
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_], list[list[str]]]:
        """Profile of a group of records; also each record's ood flag and the reasons for it."""
        n = len(inputs)
        vector = np.zeros(self.size)
        vector[0] = n
        flags = np.zeros(n, dtype=bool)
        reasons: list[list[str]] = [[] for _ in range(n)]
        for block in self.blocks:
            if block.role == "feature":
                values = [row.get(block.name) for row in inputs]
            else:
                field = block.name
                values = [row.get(field) for row in (outputs or [{}] * n)]
            bad = self._count_block(block, values, vector)
            if block.role == "feature" and bad.any():
                flags |= bad
                for i in np.flatnonzero(bad):
                    reasons[i].append(block.name)
        vector[1] = float(flags.sum())
        return vector, flags, reasons

    def count_frame(self, frame: Any, prediction: Any = None) -> NDArray[np.float64]:
        """Profile of a whole data frame at once (backfills, benchmarks, tests)."""
        vector = np.zeros(self.size)
        vector[0] = len(frame)
        flags = np.zeros(len(frame), dtype=bool)
        for block in self.blocks:
            column = frame[block.name] if block.role == "feature" else prediction
            if column is None:
                continue
            if block.kind is FeatureKind.numerical:
                bad = self._count_block(block, column.to_numpy(dtype=np.float64), vector)
            else:
                counts = column.value_counts(dropna=True)
                aligned = block.ref.count(zip(counts.index, counts.to_numpy(), strict=True))  # type: ignore[union-attr]
                o, k = block.offset, block.bins
                vector[o : o + k] += aligned
                vector[o + k] += float(column.isna().sum())
                vector[o + k + 2] += aligned[-1]
                known = list(block.ref.categories)  # type: ignore[union-attr]
                keys = column.map(category_key, na_action="ignore")
                bad = (~keys.isin(known) & column.notna()).to_numpy()
            if block.role == "feature":
                flags |= bad
        vector[1] = float(flags.sum())
        return vector

    def _count_block(
        self, block: Block, values: list[Any] | NDArray[np.float64], vector: NDArray[np.float64]
    ) -> NDArray[np.bool_]:
        o, k = block.offset, block.bins
        ref = block.ref
        if isinstance(ref, NumericalReference):
            if isinstance(values, np.ndarray):
                numbers, type_errors = values, np.zeros(values.size, dtype=bool)
            else:
                numbers, type_errors = _as_numbers(values)
            present = ~np.isnan(numbers)
            data = numbers[present]
            if data.size:
                vector[o : o + k] += np.bincount(bin_index(ref.edges, data), minlength=k)
                below, above = data < ref.edges[0], data > ref.edges[-1]
                vector[o + k + 3] += data.sum()
                vector[o + k + 4] += float(np.dot(data, data))
                vector[o + k + 5] += data[below].sum()
                vector[o + k + 6] += data[above].sum()
            bad = numeric_ood(ref, self.ood_margin, numbers) | type_errors
            vector[o + k] += float((~present & ~type_errors).sum())
            vector[o + k + 1] += float(type_errors.sum())
            vector[o + k + 2] += float(bad.sum())
            return bad
        return self._count_categories(block, ref, list(values), vector)

    @staticmethod
    def _count_categories(
        block: Block, ref: CategoricalReference, values: list[Any], vector: NDArray[np.float64]
    ) -> NDArray[np.bool_]:
        o, k = block.offset, block.bins
        unseen = len(ref.categories)
        n = len(values)
        kinds = set(map(type, values))
        missing = wrong = 0
        if kinds & {dict, list} or (bool in kinds and kinds & {int, float}):
            # Unhashable values, or True and 1 that a Counter would merge: value by value.
            bad = np.zeros(n, dtype=bool)
            for i, value in enumerate(values):
                if value is None:
                    missing += 1
                elif isinstance(value, dict | list):
                    wrong += 1
                    bad[i] = True
                else:
                    slot = ref.index.get(category_key(value), unseen)
                    vector[o + slot] += 1
                    bad[i] = slot == unseen
        else:
            # The usual case: count equal values once, then look up each distinct value.
            strange = set()
            for value, count in Counter(values).items():
                if value is None:
                    missing += count
                    continue
                slot = ref.index.get(category_key(value), unseen)
                vector[o + slot] += count
                if slot == unseen:
                    strange.add(value)
            bad = (
                np.fromiter((v in strange for v in values), dtype=bool, count=n)
                if strange
                else np.zeros(n, dtype=bool)
            )
        vector[o + k] += missing
        vector[o + k + 1] += wrong
        vector[o + k + 2] += float(bad.sum())
        return bad


_NUMBER_TYPES = {int, float, type(None)}


def _as_numbers(values: list[Any]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Values as float64 (None -> NaN) and which present values were not numbers."""
    if set(map(type, values)) <= _NUMBER_TYPES:
        return np.array(values, dtype=np.float64), np.zeros(len(values), dtype=bool)
    out = np.full(len(values), np.nan)
    errors = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if v is None:
            continue
        if isinstance(v, int | float) and not isinstance(v, bool):
            out[i] = v
        else:
            errors[i] = True
    return out, errors
