"""``driftloop estimate REFERENCE CURRENT``: a model's performance on a window without labels.

Classification (CBPE: calibrated scores) or regression (DLE: a model of the error). The reference
has the labels; when CURRENT has them too, the realized metrics are printed beside the estimates.
Exit codes as every command (``driftloop.cli.exits``): 0 estimated, 2 bad input or a model that
cannot be estimated (the message says why).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    import pandas as pd

    from driftloop.monitor.estimation import Estimation


def _names(value: str | None) -> list[str]:
    return [c.strip() for c in value.split(",") if c.strip()] if value else []


def estimate(
    reference: Path = typer.Argument(
        ..., help="Reference data with labels (Parquet, CSV, JSON...).", exists=True, dir_okay=False
    ),
    current: Path = typer.Argument(
        ...,
        help="The window to estimate, any format REFERENCE accepts.",
        exists=True,
        dir_okay=False,
    ),
    prediction_column: str = typer.Option(..., help="Column holding the model's prediction."),
    label_column: str = typer.Option(..., help="Column holding the true label (reference)."),
    score_columns: str | None = typer.Option(
        None,
        help="Comma-separated class scores, one per class in the order of the sorted class "
        "labels (a binary model may give only the second class's). Classification only.",
    ),
    task: str | None = typer.Option(
        None, help="classification or regression (default: classification when scores are given)."
    ),
    confidence: float = typer.Option(0.95, min=0.5, max=0.999, help="Interval confidence."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Estimate accuracy, precision, recall, F1 and ROC AUC (classification) or MAE and RMSE
    (regression) of CURRENT from REFERENCE, with intervals, before labels arrive."""
    from driftloop.cli.exits import BAD_INPUT, fail
    from driftloop.cli.files import read_table
    from driftloop.errors import DriftloopError

    scores = _names(score_columns)
    kind = task or ("classification" if scores else "regression")
    if kind not in {"classification", "regression"}:
        fail(f"--task must be classification or regression, not {kind!r}", BAD_INPUT)
    if kind == "classification" and not scores:
        fail("classification needs --score-columns (one score per class)", BAD_INPUT)
    try:
        ref = read_table(reference, "reference")
        cur = read_table(current, "current")
        _require(ref, [prediction_column, label_column, *scores], reference)
        _require(cur, [prediction_column, *scores], current)
        result = (
            _classification(ref, cur, prediction_column, label_column, scores, confidence)
            if kind == "classification"
            else _regression(ref, cur, prediction_column, label_column, confidence)
        )
    except (DriftloopError, ValueError, OSError) as exc:
        fail(str(exc), BAD_INPUT)
    if as_json:
        typer.echo(json.dumps(result.as_json()))
    else:
        _print(result)


def _require(frame: pd.DataFrame, columns: list[str], path: Path) -> None:
    from driftloop.errors import DatasetError

    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DatasetError(
            f"{str(path)!r} lacks the columns {missing}; it has {list(frame.columns)}"
        )


def _labels(frame: pd.DataFrame, column: str) -> Any:
    return frame[column].to_numpy() if column in frame.columns else None


def _classification(
    ref: pd.DataFrame,
    cur: pd.DataFrame,
    prediction: str,
    label: str,
    scores: list[str],
    confidence: float,
) -> Estimation:
    from driftloop.monitor.estimation import ClassificationEstimator

    ref = ref.dropna(subset=[label, *scores])
    estimator = ClassificationEstimator.fit(ref[scores].to_numpy(float), ref[label].to_numpy())
    return estimator.estimate(
        cur[scores].to_numpy(float),
        cur[prediction].to_numpy(),
        labels=_labels(cur, label),
        confidence=confidence,
    )


def _regression(
    ref: pd.DataFrame, cur: pd.DataFrame, prediction: str, label: str, confidence: float
) -> Estimation:
    from driftloop.monitor.estimation import RegressionEstimator

    features = [c for c in ref.columns if c not in {prediction, label} and c in cur.columns]
    estimator = RegressionEstimator.fit(
        ref[features], ref[prediction].to_numpy(float), ref[label].to_numpy(float)
    )
    return estimator.estimate(
        cur[features],
        cur[prediction].to_numpy(float),
        labels=cur[label].to_numpy(float) if label in cur.columns else None,
        confidence=confidence,
    )


def _print(result: Estimation) -> None:
    from rich.console import Console
    from rich.table import Table

    def fmt(value: float | None) -> str:
        return "" if value is None else f"{value:.4f}"

    table = Table(
        title=f"Estimated {result.task} performance of {result.rows} rows "
        f"({result.confidence:.0%} intervals)"
    )
    table.add_column("Metric")
    table.add_column("Estimate", justify="right")
    table.add_column("Interval", justify="right")
    if result.realized:
        table.add_column("Realized", justify="right")
        table.add_column("Covered", justify="center")
    for name, m in result.metrics.items():
        row = [name, fmt(m.estimate), f"{fmt(m.lower)} – {fmt(m.upper)}"]
        if result.realized:
            value = result.realized.get(name)
            row += [fmt(value), "" if value is None else ("yes" if m.covers(value) else "no")]
        table.add_row(*row)
    Console().print(table)
