"""``driftloop dashboards``: generate the Grafana dashboards and publish them to Grafana."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Grafana dashboards and Prometheus alert rules.", no_args_is_help=True)


@app.command("build")
def build(
    check: bool = typer.Option(
        False, "--check", help="Write nothing; exit 1 when a generated file is out of date."
    ),
    out: Path | None = typer.Option(
        None, help="Folder of the dashboard JSON (default: the package's dashboards/grafana/)."
    ),
    chart_files: Path | None = typer.Option(
        None,
        help="The Helm chart's files/ folder to copy dashboards and rules into "
        "(default: helm/driftloop/files/ of the source checkout, skipped when absent).",
    ),
) -> None:
    """Regenerate dashboards/grafana/*.json and copy dashboards and rules into the Helm chart.

    With --check, exits 1 when a generated file is out of date.
    """
    from driftloop.dashboards import GRAFANA_DIR, apply, chart_files_dir, plan

    chart = chart_files or chart_files_dir()
    changes = plan(out or GRAFANA_DIR, chart)
    for change in changes:
        verb = "remove" if change.content is None else "write"
        typer.echo(f"{'stale' if check else verb}: {change.path}")
    if check:
        if changes:
            typer.echo(f"{len(changes)} file(s) out of date: run `driftloop dashboards build`")
            raise typer.Exit(1)
        typer.echo("dashboards and rules are up to date")
        return
    apply(changes)
    if chart is None:
        typer.echo("no Helm chart next to the package: chart files not copied")
    typer.echo(f"{len(changes)} file(s) changed")


@app.command("publish")
def publish(
    url: str = typer.Option(..., envvar="DRIFTLOOP_GRAFANA_URL", help="Grafana base URL."),
    token: str = typer.Option(
        ..., envvar="DRIFTLOOP_GRAFANA_TOKEN", help="Grafana service account token (Editor)."
    ),
    folder: str = typer.Option("Driftloop", help="Folder to put the dashboards in."),
    timeout: float = typer.Option(30.0, help="Seconds to wait for each Grafana request."),
) -> None:
    """Create the folder if missing and upload every dashboard (overwriting by uid)."""
    from driftloop.dashboards import PublishError, connect, generate
    from driftloop.dashboards import publish as run_publish

    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter(f"{url!r} is not an http:// or https:// URL", param_hint="--url")
    dashboards = [json.loads(text) for text in generate().values()]
    try:
        with connect(url, token, timeout=timeout) as client:
            published = run_publish(client, dashboards, folder=folder)
    except PublishError as exc:
        from driftloop.cli.exits import fail, http_status_code

        status = getattr(exc.__cause__, "status_code", None)
        fail(str(exc), http_status_code(status if isinstance(status, int) else 503))
    for item in published:
        typer.echo(f"{item.title}: {url.rstrip('/')}{item.url} (version {item.version})")
