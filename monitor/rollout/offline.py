"""The offline gate: score a labeled holdout with the champion and the challenger over HTTP and
compare them on the same rows, before any traffic reaches the challenger.

Both models answer every row, so the comparison is *paired*: the difference of per-row scores
(correctness, or minus the loss) has mean ``Δ`` and the interval is the fixed-sample normal one,
``Δ̂ ± z_{1-alpha/2} s/√n`` — the holdout is looked at once, so no sequential correction is due.
The verdict compares it with the non-inferiority margin like a rollout does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import httpx
import numpy as np
import pandas as pd

from driftloop.contract import PredictionKind
from driftloop.errors import DatasetError, DriftloopError
from driftloop.jsonable import jsonable
from driftloop.monitor.rollout.evidence import row_values

__all__ = ["Endpoint", "ScoringError", "compare_holdout", "infer_kind", "score"]

RESPONSE_KEYS = ("predictions", "prediction", "outputs", "results", "result")


class ScoringError(DriftloopError, RuntimeError):
    """A model server refused a batch or answered something without predictions."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how a model server is called: ``POST url+path`` with ``{input_key: rows}``."""

    url: str
    path: str = "/predict"
    input_key: str = "inputs"
    output_field: str = "prediction"


def _predictions(body: Any, field: str, expected: int, where: str) -> list[Any]:
    if isinstance(body, dict):
        for key in RESPONSE_KEYS:
            if isinstance(body.get(key), list):
                body = body[key]
                break
    if not isinstance(body, list):
        raise ScoringError(f"{where} answered {str(body)[:200]!r}, not a list of predictions")
    if len(body) != expected:
        raise ScoringError(f"{where} answered {len(body)} predictions for {expected} rows")
    return [item.get(field) if isinstance(item, dict) else item for item in body]


def _jsonable_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    clean = frame.astype(object).where(frame.notna(), None)
    rows: list[dict[str, Any]] = jsonable(clean.to_dict(orient="records"))
    return rows


def score(
    client: httpx.Client, endpoint: Endpoint, features: pd.DataFrame, batch_size: int = 100
) -> list[Any]:
    """The model's prediction for every row of ``features``, in order."""
    out: list[Any] = []
    target = endpoint.url.rstrip("/") + endpoint.path
    for start in range(0, len(features), batch_size):
        rows = _jsonable_rows(features.iloc[start : start + batch_size])
        try:
            response = client.post(target, json={endpoint.input_key: rows})
        except httpx.HTTPError as exc:
            raise ScoringError(f"{target} could not be reached: {exc}") from exc
        if response.status_code >= 400:
            raise ScoringError(f"{target} answered {response.status_code}: {response.text[:300]}")
        out.extend(_predictions(response.json(), endpoint.output_field, len(rows), target))
    return out


def infer_kind(labels: pd.Series) -> PredictionKind:
    """Regression for non-integer numbers, classification otherwise."""
    numbers = pd.to_numeric(labels, errors="coerce")
    if numbers.notna().all() and labels.dtype.kind == "f" and not (numbers % 1 == 0).all():
        return PredictionKind.regression
    return PredictionKind.classification


def compare_holdout(
    client: httpx.Client,
    champion: Endpoint,
    challenger: Endpoint,
    data: pd.DataFrame,
    *,
    label_column: str = "target",
    kind: PredictionKind | None = None,
    margin: float = 0.01,
    alpha: float = 0.05,
    loss: str = "squared",
    batch_size: int = 100,
) -> dict[str, Any]:
    """Score ``data`` with both models and report the paired difference with its interval."""
    if label_column not in data.columns:
        raise DatasetError(
            f"the holdout has no label column {label_column!r} (columns: {list(data.columns)})"
        )
    labeled = data[data[label_column].notna()]
    if len(labeled) < 2:
        raise DatasetError(f"the holdout needs at least 2 labeled rows, it has {len(labeled)}")
    kind = kind or infer_kind(labeled[label_column])
    features = labeled.drop(columns=[label_column])
    values = {}
    for name, endpoint in (("champion", champion), ("challenger", challenger)):
        frame = pd.DataFrame(
            {
                "prediction": score(client, endpoint, features, batch_size),
                "label": labeled[label_column].to_list(),
            }
        )
        values[name] = row_values(frame, kind, loss)
    diff = values["challenger"] - values["champion"]
    ok = np.isfinite(diff)
    diff = diff[ok]
    n = int(diff.size)
    estimate = float(diff.mean())
    half = NormalDist().inv_cdf(1 - alpha / 2) * float(diff.std(ddof=1)) / math.sqrt(n)
    lower, upper = estimate - half, estimate + half
    if lower > -margin:
        verdict = "non_inferior"
    elif upper < -margin:
        verdict = "inferior"
    else:
        verdict = "inconclusive"
    metric = "accuracy" if kind is PredictionKind.classification else f"{loss}_error"
    sign = 1.0 if kind is PredictionKind.classification else -1.0
    return {
        "metric": metric,
        "rows": n,
        "champion": sign * float(values["champion"][ok].mean()),
        "challenger": sign * float(values["challenger"][ok].mean()),
        "difference": {
            "estimate": estimate,
            "lower": lower,
            "upper": upper,
            "confidence": 1 - alpha,
            "better": "positive",
        },
        "margin": margin,
        "verdict": verdict,
        "superior": bool(lower > 0),
        "disagreements": int((diff != 0).sum()) if kind is PredictionKind.classification else None,
    }
