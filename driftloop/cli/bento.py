"""``driftloop bento build``: wrap a fitted model as a smoke-tested Bento."""

from __future__ import annotations

import json

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
    smoke: bool = typer.Option(True, help="Serve the built Bento and check its answers."),
    smoke_rows: int = typer.Option(20, help="Reference rows sent by the smoke test."),
) -> None:
    """Save MODEL in the BentoML store, generate a record-style service, build and smoke-test.

    The service answers POST /predict {"inputs": [{feature: value}]} with
    [{"prediction": ..., "probabilities": {...}}] per row. Prints the result as JSON.
    """
    from driftloop.errors import DriftloopError
    from driftloop.serving.bento import build_bento

    try:
        result = build_bento(
            model,
            reference,
            name,
            label_column=label_column,
            capture=capture,
            smoke=smoke,
            smoke_rows=smoke_rows,
        )
    except (DriftloopError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(result.as_dict(), indent=2))
