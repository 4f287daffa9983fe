"""``driftloop bento build``: wrap a fitted model as a smoke-tested, portable Bento."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Wrap models as BentoML services.", no_args_is_help=True)


@app.command("build")
def build(
    model: str = typer.Option(..., help="Fitted model saved with joblib or pickle."),
    reference: str = typer.Option(..., help="Reference data (CSV or Parquet) with the features."),
    name: str = typer.Option(..., help="Bento and service name (lowercase)."),
    label_column: str | None = typer.Option(None, help="Column of the reference to leave out."),
    capture: bool = typer.Option(
        False, help="Attach DriftloopMiddleware (configured by DRIFTLOOP_MONITOR_URL at start)."
    ),
    wheel: Path | None = typer.Option(
        None,
        help="With --capture: the Driftloop wheel to put in the Bento (default: built from the "
        "source checkout, or driftloop==<version> from the package index).",
    ),
    smoke: bool = typer.Option(True, help="Serve the built Bento and check its answers."),
    smoke_rows: int = typer.Option(20, help="Reference rows sent by the smoke test."),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="Show progress on stderr (plain lines when piped)."
    ),
) -> None:
    """Save MODEL in the BentoML store, generate a record-style service, build and smoke-test.

    The service answers POST /predict {"inputs": [{feature: value}]} with
    [{"prediction": ..., "probabilities": {...}}] per row. The Bento declares the packages the
    model needs (scikit-learn, joblib, numpy, pandas at the trained versions; Driftloop with
    --capture), so `bentoml containerize <tag>` builds an image that runs it. Prints the result
    as JSON on stdout. Exits 2 on bad input, 1 when the built Bento does not answer like the model.
    """
    from driftloop.cli.exits import BAD_INPUT, FINDING, fail
    from driftloop.cli.progress import Progress
    from driftloop.errors import DriftloopError
    from driftloop.serving.bento import build_bento

    error: tuple[str, int] | None = None
    with Progress(enabled=progress) as bar:
        try:
            result = build_bento(
                model,
                reference,
                name,
                label_column=label_column,
                capture=capture,
                smoke=smoke,
                smoke_rows=smoke_rows,
                wheel=wheel,
                progress=lambda stage, done, total: bar.update(stage, done, total, unit="steps"),
            )
        except DriftloopError as exc:
            error = (str(exc), BAD_INPUT)
        except RuntimeError as exc:  # the built Bento does not serve, or answers unlike the model
            error = (str(exc), FINDING)
    if error is not None:
        fail(*error)
    typer.echo(json.dumps(result.as_dict(), indent=2))
