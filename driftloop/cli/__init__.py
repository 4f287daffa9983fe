"""The ``driftloop`` command line. Each command lives in its own module and is registered here,
explicitly; heavy imports happen inside the commands so ``driftloop --help`` stays fast."""

from __future__ import annotations

import typer

from driftloop.cli import (
    bento,
    dashboards,
    dataset,
    db,
    demo,
    drift,
    monitor,
    retrain,
    sidecar,
    webhooks,
)
from driftloop.cli.compare import compare

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
app.command("compare")(compare)
app.command("demo")(demo.demo)
app.add_typer(db.app, name="db")
app.add_typer(dashboards.app, name="dashboards")
app.command("sidecar")(sidecar.sidecar)
app.add_typer(bento.app, name="bento")
app.command("retrain")(retrain.retrain)
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(dataset.app, name="dataset")


def main() -> None:
    """Entry point of the ``driftloop`` script."""
    app()


__all__ = ["app", "main"]
