"""``driftloop monitor``: the monitor and feedback APIs."""

from __future__ import annotations

import gc
import ipaddress
import logging

import typer

GC_YOUNG_THRESHOLD = 20_000
"""Allocations between young-generation collections in the monitor process (Python's default:
700). Measured on the ingest benchmark: monitor CPU per record 34 µs -> 29 µs."""


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def monitor(
    host: str | None = typer.Option(None, help="Address to bind (env DRIFTLOOP_HOST)."),
    port: int | None = typer.Option(None, help="Port to bind (env DRIFTLOOP_PORT; 8080)."),
    database_url: str | None = typer.Option(
        None, help="SQLAlchemy URL (env DRIFTLOOP_DATABASE_URL; default sqlite:///driftloop.db)."
    ),
    migrate: bool | None = typer.Option(
        None,
        "--migrate/--no-migrate",
        help="Upgrade the database at start-up (default: yes for SQLite, no for PostgreSQL).",
    ),
    log_level: str = typer.Option("info", help="Log level."),
) -> None:
    """Run the monitor: records, models, drift, feedback, rollouts, /metrics."""
    import uvicorn

    from driftloop.errors import ConfigurationError
    from driftloop.server import create_app
    from driftloop.settings import load_settings
    from driftloop.store import make_engine, upgrade
    from driftloop.store.dialect import dialect_of

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per job run is noise
    settings = load_settings(host=host, port=port, database_url=database_url)
    if not settings.auth_enabled:
        if not is_loopback(settings.host):
            raise ConfigurationError(
                f"refusing to serve an open API on {settings.host}: configure bearer tokens "
                "with DRIFTLOOP_TOKENS or bind to 127.0.0.1"
            )
        typer.echo(
            f"No tokens configured: the API is open, on loopback only ({settings.host}).",
            err=True,
        )
    engine = make_engine(settings.database_url)
    dialect = dialect_of(engine)
    ahead = settings.retention.partitions_ahead_days
    if migrate if migrate is not None else dialect.migrates_on_start:
        upgrade(engine, partitions_ahead_days=ahead)
    else:  # day partitions from today on (PostgreSQL, 0011 on), before any record arrives
        from sqlalchemy.exc import SQLAlchemyError

        from driftloop.clock import SystemClock
        from driftloop.monitor.partitions import ensure_ahead

        try:
            ensure_ahead(engine, SystemClock().now().date(), ahead)
        except SQLAlchemyError as exc:
            # Start anyway: /readyz answers 503 until the database is back, and the leader's
            # partitions job creates them then (rows meanwhile land in the default partition).
            logging.getLogger(__name__).warning(
                "could not create day partitions at start (%s); the leader's partitions job "
                "retries once the database answers",
                exc.__class__.__name__,
            )
    app = create_app(settings, engine=engine)
    # What start-up built lives as long as the process: out of the cyclic collector's reach,
    # collections triggered by request traffic only scan what requests allocate (they were a
    # third of the time spent parsing a batch of records; docs/benchmarks.md).
    gc.collect()
    gc.freeze()
    # A batch of records allocates some ten thousand containers that live until its response:
    # at the default threshold (700) each batch set off a dozen young collections, each
    # re-scanning the batch. Requests make few reference cycles; refcounting frees the rest.
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=10,
    )
