"""``driftloop db``: database migrations and retention (``upgrade``, ``prune``)."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console

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
        run_upgrade(engine, revision)
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
    Exits 3 when the database cannot be reached, 2 when it refuses a statement.
    """
    import json

    from sqlalchemy.exc import SQLAlchemyError

    from driftloop.cli.exits import BAD_INPUT, UNREACHABLE, fail
    from driftloop.cli.progress import Progress
    from driftloop.clock import SystemClock
    from driftloop.monitor.retention import retention_policy
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
                        engine, retention_policy(settings), clock.now(), dry_run=True
                    )
            else:
                report = run_prune(
                    engine, retention_policy(settings), clock.now(), progress=progress
                )
                for table, rows in done.items():
                    bar.update(f"pruning {table}", rows, rows)
        report.finished_at = clock.now()
    except SQLAlchemyError as exc:
        engine.dispose()
        reason = getattr(exc, "orig", None) or exc
        if database_unavailable(exc):
            fail(f"cannot reach the database {where}: {reason}", UNREACHABLE)
        fail(f"the database {where} refused the prune: {reason}", BAD_INPUT)
    engine.dispose()
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    _print_report(report, where, settings.retention_days)


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
