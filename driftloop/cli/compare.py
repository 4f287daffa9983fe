"""``driftloop compare``: the offline gate — champion vs challenger on a labeled holdout."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import typer


def compare(
    champion: str = typer.Option(..., help="Base URL of the champion's Bento."),
    challenger: str = typer.Option(..., help="Base URL of the challenger's Bento."),
    data: Path = typer.Option(
        ..., help="Labeled holdout (Parquet or CSV).", exists=True, dir_okay=False, readable=True
    ),
    label_column: str = typer.Option("target", help="Column holding the true label."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
    task: str | None = typer.Option(
        None, help="classification or regression (default: inferred from the labels)."
    ),
    margin: float = typer.Option(0.01, min=0, help="Non-inferiority margin (metric units)."),
    alpha: float = typer.Option(0.05, min=1e-6, max=0.5, help="1 - confidence of the interval."),
    endpoint: str = typer.Option("/predict", help="Path of the prediction endpoint."),
    input_key: str = typer.Option("inputs", help="Request key the rows go under."),
    output_field: str = typer.Option("prediction", help="Key of the prediction in each answer."),
    batch_size: int = typer.Option(100, min=1, help="Rows per request."),
    timeout: float = typer.Option(30.0, min=0.1, help="Seconds to wait for one answer."),
) -> None:
    """Score the holdout (--data) with both models; report the difference with an interval.

    Exits 0 when the challenger is shown non-inferior (the interval lies above -margin), 1 when it
    is not, 2 on bad input (a file, a label column, a 4xx answer), 3 when a Bento is unreachable
    or answers 5xx.
    """
    import httpx

    from driftloop.cli.exits import BAD_INPUT, FINDING, UNREACHABLE, fail
    from driftloop.cli.files import read_table
    from driftloop.contract import PredictionKind
    from driftloop.errors import DriftloopError
    from driftloop.monitor.rollout.offline import Endpoint, ScoringError, compare_holdout

    try:
        kind = PredictionKind(task) if task else None
        frame = read_table(data, "holdout")
        with httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0)) as client:
            result = compare_holdout(
                client,
                Endpoint(champion, endpoint, input_key, output_field),
                Endpoint(challenger, endpoint, input_key, output_field),
                frame,
                label_column=label_column,
                kind=kind,
                margin=margin,
                alpha=alpha,
                batch_size=batch_size,
            )
    except ScoringError as exc:
        unreachable = isinstance(exc.__cause__, httpx.HTTPError) or bool(
            re.search(r" answered 5\d\d", str(exc))
        )
        fail(str(exc), UNREACHABLE if unreachable else BAD_INPUT)
    except (DriftloopError, ValueError, OSError) as exc:
        fail(str(exc), BAD_INPUT)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        _print(result)
    if result["verdict"] != "non_inferior":
        raise typer.Exit(FINDING)


def _print(result: dict[str, Any]) -> None:
    d = result["difference"]
    typer.echo(
        f"{result['metric']} on {result['rows']} rows: champion {result['champion']:.4f}, "
        f"challenger {result['challenger']:.4f}"
    )
    typer.echo(
        f"difference (positive: challenger better) {d['estimate']:+.4f}, "
        f"{d['confidence']:.0%} interval [{d['lower']:+.4f}, {d['upper']:+.4f}]"
    )
    typer.echo(f"verdict against margin {result['margin']}: {result['verdict']}")
