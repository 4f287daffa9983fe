"""``driftloop dataset``: export training snapshots (reference + labeled production rows)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

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
    include_archive: bool = typer.Option(
        False,
        "--include-archive",
        help="Add labeled rows pruned to the archive (env DRIFTLOOP_RETENTION__ARCHIVE_URL).",
    ),
    database_url: str | None = typer.Option(
        None, help="SQLAlchemy URL (env DRIFTLOOP_DATABASE_URL; default sqlite:///driftloop.db)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON only."),
) -> None:
    """Write a Parquet snapshot with its manifest and print where it is."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from driftloop.cli.exits import BAD_INPUT, UNREACHABLE, fail
    from driftloop.cli.progress import Progress
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
    engine = make_engine(settings.database_url)
    where = engine.url.render_as_string(hide_password=True)
    error: tuple[str, int] | None = None
    manifest: dict[str, Any] = {}
    try:
        sessions = make_sessionmaker(engine)
        with Progress(enabled=not as_json) as bar, sessions.begin() as session:
            found = session.scalar(select(Model).where(Model.name == model))
            if found is None:
                error = (f"unknown model {model!r} in {where}", BAD_INPUT)
            else:

                def progress(stage: str, done: int, total: int) -> None:
                    unit = "bytes" if stage == "write" else "rows"
                    bar.update(STAGES.get(stage, stage), done, total, unit=unit)

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
                        include_archive=include_archive,
                        archive_url=settings.retention.archive_url,
                        progress=progress,
                    )
                except DriftloopError as exc:
                    error = (str(exc), BAD_INPUT)
    except SQLAlchemyError as exc:
        from driftloop.store.errors import database_unavailable

        reason = getattr(exc, "orig", None) or exc
        if database_unavailable(exc) and "no such table" not in str(reason):
            error = (f"cannot reach the database {where}: {reason}", UNREACHABLE)
        else:
            error = (
                f"the database {where} refused: {reason} (run `driftloop db upgrade`?)",
                BAD_INPUT,
            )
    finally:
        engine.dispose()
    if error is not None:
        fail(*error)
    if as_json:
        typer.echo(json.dumps(manifest, indent=2, sort_keys=True))
        return
    sources = manifest["sources"]
    typer.echo(
        f"snapshot {manifest['snapshot_id']}: {manifest['rows']:,} rows "
        f"({sources['production']:,} production, {sources['reference']:,} reference), "
        f"sha256 {manifest['sha256']}\n{manifest['uri']}"
    )
