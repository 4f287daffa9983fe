"""Drift between two data frames: the raw path used by the CLI, reports and the benchmark.

The reference is prepared once (:class:`Reference`), then any number of current frames are
compared against it. Columns are converted without copies where pandas allows; each numerical
column costs one sort, one binary search of the current values into the reference, and O(m)
arithmetic; each categorical column one hash count. ``workers > 1`` compares features in threads
(NumPy releases the GIL in sorting and searching).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from driftloop.contract import FeatureKind, ModelSchema
from driftloop.errors import DatasetError
from driftloop.monitor.drift.decision import DriftConfig, DriftReport, FeatureTest, decide
from driftloop.monitor.drift.methods import (
    categorical_measures,
    numerical_measures,
    resolve_method,
)
from driftloop.monitor.drift.missing import missing_share
from driftloop.monitor.drift.reference import (
    CategoricalReference,
    NumericalReference,
    categorical_reference,
    numerical_reference,
)

__all__ = [
    "FeatureSpec",
    "Reference",
    "compare_frame",
    "infer_specs",
    "numeric_column",
    "specs_from_schema",
]


@dataclass(frozen=True)
class FeatureSpec:
    """How one column is compared: its kind and optional per-feature overrides."""

    name: str
    kind: FeatureKind
    method: str | None = None
    materiality: float | None = None


def specs_from_schema(schema: ModelSchema) -> list[FeatureSpec]:
    """Feature specs from a model schema (method and materiality overrides included)."""
    return [FeatureSpec(f.name, f.kind, f.drift_method, f.materiality) for f in schema.features]


def infer_specs(frame: pd.DataFrame, columns: Iterable[str] | None = None) -> list[FeatureSpec]:
    """Numbers (not booleans) are numerical; everything else is categorical."""
    specs = []
    for name in columns if columns is not None else frame.columns:
        dtype = frame[name].dtype
        numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        specs.append(
            FeatureSpec(str(name), FeatureKind.numerical if numeric else FeatureKind.categorical)
        )
    return specs


def numeric_column(series: pd.Series) -> tuple[NDArray[np.float64], int]:
    """Values as float64 with NaN for missing, and how many present values were not numbers."""
    dtype = series.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan), 0
    coerced = pd.to_numeric(series, errors="coerce")
    errors = int((coerced.isna() & series.notna()).sum())
    return coerced.to_numpy(dtype=np.float64, na_value=np.nan), errors


def _sorted_valid(values: NDArray[np.float64]) -> NDArray[np.float64]:
    data = np.sort(values)
    return data[: int(np.searchsorted(data, np.nan))]


FeatureReference = NumericalReference | CategoricalReference


class Reference:
    """A reference dataset prepared for comparisons: one entry per feature spec."""

    def __init__(self, specs: Sequence[FeatureSpec], features: dict[str, FeatureReference]):
        self.specs = list(specs)
        self.features = features

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, specs: Sequence[FeatureSpec] | None = None
    ) -> Reference:
        """Prepare every feature of ``frame`` named in ``specs`` (all columns by default)."""
        specs = list(specs) if specs is not None else infer_specs(frame)
        features: dict[str, FeatureReference] = {}
        for spec in specs:
            if spec.name not in frame.columns:
                raise DatasetError(f"the reference has no column {spec.name!r}")
            resolve_method(spec.kind, spec.method, discrete=True)  # fail early on a bad name
            column = frame[spec.name]
            try:
                if spec.kind is FeatureKind.numerical:
                    values, _ = numeric_column(column)
                    features[spec.name] = numerical_reference(spec.name, values)
                else:
                    counts = column.value_counts(dropna=True)
                    features[spec.name] = categorical_reference(
                        spec.name,
                        dict(zip(counts.index, counts.to_numpy(), strict=True)),
                        rows=len(column),
                        missing=len(column) - int(counts.sum()),
                    )
            except ValueError as exc:
                raise DatasetError(str(exc)) from exc
            ref = features[spec.name]
            resolve_method(spec.kind, spec.method, discrete=_discrete(ref))
        return cls(specs, features)


def _discrete(ref: FeatureReference) -> bool:
    return isinstance(ref, NumericalReference) and ref.discrete


def _test(spec: FeatureSpec, ref: FeatureReference, frame: pd.DataFrame) -> FeatureTest:
    method = resolve_method(spec.kind, spec.method, discrete=_discrete(ref))
    if spec.name not in frame.columns:
        return FeatureTest(
            spec.name,
            spec.kind,
            method,
            None,
            spec.materiality,
            note="column missing from the current data",
        )
    column: Any = frame[spec.name]
    if isinstance(ref, NumericalReference):
        values, errors = numeric_column(column)
        cur = _sorted_valid(values)
        missing = missing_share(
            ref.missing, ref.rows, values.size - cur.size - errors, values.size - errors
        )
        if cur.size == 0:
            return FeatureTest(
                spec.name,
                spec.kind,
                method,
                None,
                spec.materiality,
                note="no numeric values in the current data",
                missing=missing,
            )
        measures = numerical_measures(ref, cur, discrete=method.name == "chi2")
        return FeatureTest(spec.name, spec.kind, method, measures, spec.materiality, None, missing)
    counts = column.value_counts(dropna=True)
    aligned = ref.count(zip(counts.index, counts.to_numpy(), strict=True))
    present = float(aligned.sum())
    missing = missing_share(ref.missing, ref.rows, len(column) - present, len(column))
    if present == 0:
        return FeatureTest(
            spec.name,
            spec.kind,
            method,
            None,
            spec.materiality,
            note="no values in the current data",
            missing=missing,
        )
    return FeatureTest(
        spec.name,
        spec.kind,
        method,
        categorical_measures(ref.counts, aligned),
        spec.materiality,
        None,
        missing,
    )


def compare_frame(
    reference: Reference, current: pd.DataFrame, config: DriftConfig, *, workers: int = 1
) -> DriftReport:
    """Drift of every reference feature in ``current``, decided with ``config``."""
    jobs = [(spec, reference.features[spec.name]) for spec in reference.specs]
    if workers > 1 and len(jobs) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            tests = list(pool.map(lambda job: _test(job[0], job[1], current), jobs))
    else:
        tests = [_test(spec, ref, current) for spec, ref in jobs]
    return decide(tests, config)
