"""Reference against current distribution of one feature, for the model page (on click).

The reference is the model's stored reference dataset; "current" is the feature in the newest
records (at most :data:`MAX_RECORDS`). Numbers are binned on the reference's range (ten equal
bins between its 1st and 99th percentiles, plus one bin each side for values outside); categories
show the reference's twelve most common ones and "other".
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.store import Model, RecordRow

__all__ = ["feature_histogram"]

MAX_RECORDS = 5_000
TOP = 12


def _current(session: Session, model: Model, feature: str) -> list[Any]:
    rows = session.scalars(
        select(RecordRow.inputs)
        .where(RecordRow.model_id == model.id)
        .order_by(RecordRow.ts.desc())
        .limit(MAX_RECORDS)
    )
    return [r.get(feature) for r in rows if isinstance(r, dict) and r.get(feature) is not None]


def _numbers(values: list[Any]) -> np.ndarray:
    out = []
    for v in values:
        if isinstance(v, bool):
            continue
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            continue
    array = np.asarray(out, dtype=float)
    return array[np.isfinite(array)]


def _shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return [float(c / total) if total else 0.0 for c in counts]


def feature_histogram(session: Session, model: Model, feature: str) -> Markup:
    """An SVG figure with the reference's and the current traffic's shares side by side."""
    from driftloop.monitor.status.charts import bars
    from driftloop.store.reference import load_reference

    frame = load_reference(session, model)
    reference = (
        [] if frame is None or feature not in frame.columns else frame[feature].dropna().tolist()
    )
    current = _current(session, model, feature)
    title = f"{feature}: reference ({len(reference):,} rows) vs current ({len(current):,} rows)"
    ref_num, cur_num = _numbers(reference), _numbers(current)
    numeric = len(ref_num) > 0 and len(ref_num) >= 0.9 * len(reference)
    if numeric:
        lo, hi = np.quantile(ref_num, [0.01, 0.99])
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, 11)
        full = np.concatenate([[-np.inf], edges, [np.inf]])
        labels = [f"< {lo:.3g}"] + [f"{a:.3g}" for a in edges[:-1]] + [f"≥ {hi:.3g}"]
        ref_counts = np.histogram(ref_num, full)[0]
        cur_counts = np.histogram(cur_num, full)[0] if len(cur_num) else np.zeros(12)
    else:
        ref_counter = Counter(str(v) for v in reference)
        cur_counter = Counter(str(v) for v in current)
        labels = [k for k, _ in ref_counter.most_common(TOP)] or [
            k for k, _ in cur_counter.most_common(TOP)
        ]
        known = set(labels)
        labels.append("other")
        ref_counts = np.asarray(
            [ref_counter[k] for k in labels[:-1]]
            + [sum(c for k, c in ref_counter.items() if k not in known)]
        )
        cur_counts = np.asarray(
            [cur_counter[k] for k in labels[:-1]]
            + [sum(c for k, c in cur_counter.items() if k not in known)]
        )
    figure = bars(
        "histogram",
        title,
        labels,
        [
            ("reference", _shares(ref_counts), "#9aa5c4"),
            ("current", _shares(cur_counts), "#d9730d"),
        ],
        empty=f"no values of {feature} in the reference or the recent records",
    )
    return Markup(f'<div class="histogram" data-feature="{escape(feature)}">{figure}</div>')
