"""``driftloop dataset``: export training snapshots (reference + labeled production rows)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import typer

app = typer.Typer(help="Export dataset snapshots for retraining.", no_args_is_help=True)

STAGES = {"fetch": "joining labels to records", "build": "building the table", "write": "writing"}


def _when(value: str | None, flag: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint=flag) from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@app.command("export")
def export(
    model: str = typer.Option(..., "--model", help="Model name."),
    since: str | None = typer.Option(None, help="Predictions at or after (ISO 8601, UTC)."),
    until: str | None = typer.Option(None, help="Predictions before (ISO 8601, UTC)."),
    variant: str | None = typer.Option(None, help="Only champion, challenger or shadow rows."),
    out: str | None = typer.Option(
        None, help="Directory or fsspec URL (env DRIFTLOOP_SNAPSHOT_DIR; ./driftloop-snapshots)."
    ),
    no_reference: bool = typer.Option(False, "--no-reference", help="Leave reference rows out."),
    database_url: str | None = typer.Option(
        None, help="SQLAlchemy URL (env DRIFTLOOP_DATABASE_URL; default sqlite:///driftloop.db)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON only."),
) -> None:
    """Write a Parquet snapshot with its manifest and print where it is."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
    from sqlalchemy import select

    from driftloop.clock import SystemClock
    from driftloop.contract import Variant
    from driftloop.errors import DriftloopError
    from driftloop.feedback.snapshots import create_snapshot
    from driftloop.settings import load_settings
    from driftloop.store import Model, make_engine, make_sessionmaker

    start, end = _when(since, "--since"), _when(until, "--until")
    if variant is not None and variant not in {v.value for v in Variant}:
        raise typer.BadParameter(f"unknown variant {variant!r}", param_hint="--variant")
    settings = load_settings(database_url=database_url)
    console = Console(stderr=True)
    engine = make_engine(settings.database_url)
    try:
        sessions = make_sessionmaker(engine)
        with (
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
                TimeElapsedColumn(),
                console=console,
                disable=as_json or not console.is_terminal,
            ) as bar,
            sessions.begin() as session,
        ):
            found = session.scalar(select(Model).where(Model.name == model))
            if found is None:
                console.print(f"[red]unknown model {model!r}[/red]")
                raise typer.Exit(code=1)
            tasks: dict[str, TaskID] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(STAGES.get(stage, stage), total=None)
                bar.update(tasks[stage], completed=done, total=total if total >= 0 else None)

            try:
                manifest = create_snapshot(
                    session,
                    found,
                    out=out or settings.snapshot_dir,
                    since=start,
                    until=end,
                    variant=variant,
                    now=SystemClock().now(),
                    include_reference=not no_reference,
                    progress=progress,
                )
            except DriftloopError as exc:
                console.print(f"[red]{exc}[/red]")
                raise typer.Exit(code=1) from exc
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(manifest, indent=2, sort_keys=True))
        return
    sources = manifest["sources"]
    typer.echo(
        f"snapshot {manifest['snapshot_id']}: {manifest['rows']:,} rows "
        f"({sources['production']:,} production, {sources['reference']:,} reference), "
        f"sha256 {manifest['sha256']}\n{manifest['uri']}"
    )
