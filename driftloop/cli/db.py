"""``driftloop db``: database migrations and retention (``upgrade``, ``prune``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from driftloop.feedback.snapshot_retention import SnapshotPruneReport

app = typer.Typer(help="Manage the Driftloop database.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(
    database_url: str | None = typer.Option(
        None, help="SQLAlchemy URL (env DRIFTLOOP_DATABASE_URL; default sqlite:///driftloop.db)."
    ),
    revision: str = typer.Option("heads", help="Target revision."),
) -> None:
    """Migrate the database to the schema this version of Driftloop needs.

    Exits 3 when the database cannot be reached, 2 when it refuses the migration.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from driftloop.cli.exits import BAD_INPUT, UNREACHABLE, fail
    from driftloop.settings import load_settings
    from driftloop.store import make_engine
    from driftloop.store import upgrade as run_upgrade
    from driftloop.store.errors import database_unavailable
    from driftloop.store.migrate import current_revisions

    settings = load_settings(database_url=database_url)
    engine = make_engine(settings.database_url)
    where = engine.url.render_as_string(hide_password=True)
    try:
        before = current_revisions(engine)
        run_upgrade(
            engine, revision, partitions_ahead_days=settings.retention.partitions_ahead_days
        )
        after = current_revisions(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        reason = getattr(exc, "orig", None) or exc
        if database_unavailable(exc):
            fail(f"cannot reach the database {where}: {reason}", UNREACHABLE)
        fail(f"the database {where} refused the migration: {reason}", BAD_INPUT)
    Console().print(
        f"database {engine.url.render_as_string(hide_password=True)}: "
        f"{', '.join(sorted(before)) or 'empty'} -> {', '.join(sorted(after))}"
    )
    engine.dispose()


@app.command("prune")
def prune(
    database_url: str | None = typer.Option(
        None, help="SQLAlchemy URL (env DRIFTLOOP_DATABASE_URL; default sqlite:///driftloop.db)."
    ),
    retention_days: int | None = typer.Option(
        None, min=1, help="Keep this many days (env DRIFTLOOP_RETENTION_DAYS; default 30)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would go; delete nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
) -> None:
    """Delete raw records, their labels, pending labels, drift profiles and flagged records
    older than the retention, in batches (ingest keeps running), and say what was dropped.

    The monitor's leader runs the same prune every DRIFTLOOP_RETENTION__INTERVAL_SECONDS.
    With DRIFTLOOP_RETENTION__SNAPSHOT_DAYS, dataset snapshots older than that go too (files,
    then rows), except those a registered version trained on.
    With DRIFTLOOP_RETENTION__ARCHIVE_URL, each day of records and labels is written as Parquet
    there first; a day whose archive fails is kept, and the command exits 1.
    Exits 3 when the database cannot be reached, 2 when it refuses a statement.
    """
    import json

    from sqlalchemy.exc import SQLAlchemyError

    from driftloop.cli.exits import BAD_INPUT, FINDING, UNREACHABLE, fail
    from driftloop.cli.progress import Progress
    from driftloop.clock import SystemClock
    from driftloop.monitor.retention import archive_for, retention_policy
    from driftloop.settings import load_settings
    from driftloop.store import make_engine
    from driftloop.store.errors import database_unavailable
    from driftloop.store.retention import prune as run_prune

    settings = load_settings(database_url=database_url, retention_days=retention_days)
    engine = make_engine(settings.database_url)
    where = engine.url.render_as_string(hide_password=True)
    clock = SystemClock()
    done: dict[str, int] = {}
    try:
        with Progress(enabled=not as_json) as bar:

            def progress(table: str, rows: int) -> None:
                done[table] = rows
                bar.update(f"pruning {table}", rows)

            if dry_run:
                with bar.step("counting rows past the retention"):
                    report = run_prune(
                        engine,
                        retention_policy(settings),
                        clock.now(),
                        dry_run=True,
                        archive=archive_for(settings),
                    )
            else:
                report = run_prune(
                    engine,
                    retention_policy(settings),
                    clock.now(),
                    progress=progress,
                    archive=archive_for(settings),
                )
                for table, rows in done.items():
                    bar.update(f"pruning {table}", rows, rows)
            snapshots = _prune_snapshots(engine, settings, clock.now(), dry_run=dry_run)
        report.finished_at = clock.now()
    except SQLAlchemyError as exc:
        engine.dispose()
        reason = getattr(exc, "orig", None) or exc
        if database_unavailable(exc):
            fail(f"cannot reach the database {where}: {reason}", UNREACHABLE)
        fail(f"the database {where} refused the prune: {reason}", BAD_INPUT)
    engine.dispose()
    if as_json:
        document = report.as_dict()
        document["snapshots"] = None if snapshots is None else snapshots.as_dict()
        typer.echo(json.dumps(document, indent=2))
    else:
        _print_report(report, where, settings.retention_days)
        _print_snapshots(snapshots)
    if report.archive is not None and report.archive["errors"]:
        raise typer.Exit(FINDING)  # rows kept because their archive failed
    if snapshots is not None and snapshots.failed:
        raise typer.Exit(FINDING)  # snapshots kept because their files could not be removed


def _prune_snapshots(
    engine: Any, settings: Any, now: datetime, *, dry_run: bool
) -> SnapshotPruneReport | None:
    """Snapshots past DRIFTLOOP_RETENTION__SNAPSHOT_DAYS (None when that is not set)."""
    from driftloop.feedback.snapshot_retention import prune_snapshots

    days = settings.retention.snapshot_days
    if days is None:
        return None
    return prune_snapshots(engine, now - timedelta(days=days), dry_run=dry_run)


def _print_snapshots(report: SnapshotPruneReport | None) -> None:
    if report is None:
        return
    verb = "would remove" if report.dry_run else "removed"
    typer.echo(
        f"snapshots created before {report.cutoff:%Y-%m-%d %H:%M} UTC: {verb} "
        f"{len(report.removed):,} ({report.bytes:,} bytes), kept {len(report.pinned):,} that a "
        f"registered version trained on, {len(report.failed):,} failed"
    )
    for snapshot_id, error in report.failed.items():
        typer.echo(f"  {snapshot_id}: {error}", err=True)


def _print_report(report: Any, where: str, days: int) -> None:
    from rich.table import Table

    verb = "would drop" if report.dry_run else "dropped"
    typer.echo(f"{where}: {verb} {report.total_rows:,} rows older than {days} days")
    table = Table(title="rows")
    table.add_column("table")
    table.add_column("why")
    table.add_column("older than (UTC)", justify="right")
    table.add_column("rows", justify="right")
    for step in report.steps:
        table.add_row(
            step.table, step.reason, step.cutoff.strftime("%Y-%m-%d %H:%M"), f"{step.rows:,}"
        )
    Console().print(table)
    if report.partitions:
        parts = Table(title="day partitions")
        for column in ("table", "partition", "from (UTC)", "rows", "bytes"):
            parts.add_column(column, justify="right" if column in ("rows", "bytes") else "left")
        for part in report.partitions:
            parts.add_row(
                part.table,
                part.name,
                part.lower.strftime("%Y-%m-%d"),
                f"{part.rows:,}",
                f"{part.bytes:,}",
            )
        Console().print(parts)
    sizes = Table(title="bytes")
    sizes.add_column("table")
    sizes.add_column("before", justify="right")
    sizes.add_column("after", justify="right")
    for name, before in [*report.bytes_before.items(), ("database", report.database_bytes_before)]:
        after = report.database_bytes_after if name == "database" else report.bytes_after.get(name)
        if before is None:
            continue
        sizes.add_row(name, f"{before:,}", "-" if after is None else f"{after:,}")
    if sizes.row_count:
        Console().print(sizes)
    _print_archive(report.archive)


def _print_archive(archive: dict[str, Any] | None) -> None:
    from rich.table import Table

    if archive is None:
        return
    rows = archive["rows"]
    planned = archive.get("planned")
    if planned is not None:  # a dry run
        todo = [p for p in planned if p["archived_rows"] is None]
        typer.echo(
            f"archive {archive['url']}: would archive {len(todo)} days "
            f"({sum(p['records'] for p in todo):,} records) first; "
            f"{len(planned) - len(todo)} archived already"
        )
    else:
        typer.echo(
            f"archive {archive['url']}: {archive['partitions']} partitions, "
            f"{len(archive['files'])} files, {sum(rows.values()):,} rows, "
            f"{archive['bytes']:,} bytes"
        )
    if archive["written"]:
        table = Table(title="archived")
        for column in ("table", "model", "date", "rows", "bytes", "file"):
            table.add_column(column, justify="right" if column in ("rows", "bytes") else "left")
        for entry in archive["written"]:
            table.add_row(
                entry["table"],
                entry["model"],
                entry["date"],
                f"{entry['rows']:,}",
                f"{entry['bytes']:,}",
                entry["files"][0] if entry["files"] else "",
            )
        Console().print(table)
    if archive.get("planned"):
        table = Table(title="would archive first (records)")
        for column in ("model", "date", "records", "archived already"):
            table.add_column(column, justify="left" if column in ("model", "date") else "right")
        for entry in archive["planned"]:
            done = entry["archived_rows"]
            table.add_row(
                entry["model"],
                entry["date"],
                f"{entry['records']:,}",
                entry["error"] or ("-" if done is None else f"{done:,} rows"),
            )
        Console().print(table)
    for error in archive["errors"]:
        typer.echo(f"archive failed (rows kept): {error}", err=True)
