"""The ``driftloop`` command line. Each command lives in its own module and is registered here,
explicitly; heavy imports happen inside the commands so ``driftloop --help`` stays fast."""

from __future__ import annotations

import typer

from driftloop.cli import (
    bento,
    compare,
    dashboards,
    dataset,
    db,
    demo,
    drift,
    estimate,
    mlflow,
    monitor,
    retrain,
    sidecar,
    webhooks,
)

app = typer.Typer(
    name="driftloop",
    help="Driftloop closes the MLOps loop for models served with BentoML.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        import driftloop

        typer.echo(f"driftloop {driftloop.__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Driftloop: capture, monitor, compare and retrain models served with BentoML."""


app.command("monitor")(monitor.monitor)
app.command("drift")(drift.drift)
app.command("estimate")(estimate.estimate)
app.command("compare")(compare.compare)
app.command("demo")(demo.demo)
app.add_typer(db.app, name="db")
app.add_typer(dashboards.app, name="dashboards")
app.command("sidecar")(sidecar.sidecar)
app.add_typer(bento.app, name="bento")
app.command("retrain")(retrain.retrain)
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(dataset.app, name="dataset")
app.add_typer(mlflow.app, name="mlflow")


def main() -> None:
    """Entry point of the ``driftloop`` script."""
    try:
        app()
    except Exception as exc:  # a bad setting found past the parser: one line and exit 2
        from driftloop.cli.exits import exit_on_bad_settings

        exit_on_bad_settings(exc)


__all__ = ["app", "main"]
