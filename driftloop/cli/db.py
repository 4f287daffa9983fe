"""``driftloop db``: database migrations."""

from __future__ import annotations

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
    """Migrate the database to the schema this version of Driftloop needs."""
    from driftloop.settings import load_settings
    from driftloop.store import make_engine
    from driftloop.store import upgrade as run_upgrade
    from driftloop.store.migrate import current_revisions

    settings = load_settings(database_url=database_url)
    engine = make_engine(settings.database_url)
    before = current_revisions(engine)
    run_upgrade(engine, revision)
    after = current_revisions(engine)
    Console().print(
        f"database {engine.url.render_as_string(hide_password=True)}: "
        f"{', '.join(sorted(before)) or 'empty'} -> {', '.join(sorted(after))}"
    )
    engine.dispose()
