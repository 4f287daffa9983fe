"""Shared fixtures: databases (SQLite and the real PostgreSQL), settings, the monitor app.

Under CI (``CI=true``) a test whose real dependency is missing fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from driftloop.clock import FrozenClock
from driftloop.settings import JobSettings, Settings
from driftloop.store import make_engine, upgrade

PG_ADMIN_URL = os.environ.get(
    "DRIFTLOOP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def need(ok: bool, why: str) -> None:
    """Skip the test when ``ok`` is false, or fail it under CI, where nothing may be missing."""
    if ok:
        return
    if IN_CI:
        pytest.fail(f"required under CI: {why}")
    pytest.skip(why)


@pytest.fixture(scope="session", autouse=True)
def _snapshots_outside_the_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Settings built anywhere in the suite (and the processes it starts) write dataset
    snapshots under the test run's temporary folder, never into the working tree."""
    folder = tmp_path_factory.mktemp("snapshots")
    previous = os.environ.get("DRIFTLOOP_SNAPSHOT_DIR")
    os.environ["DRIFTLOOP_SNAPSHOT_DIR"] = str(folder)
    yield
    if previous is None:
        os.environ.pop("DRIFTLOOP_SNAPSHOT_DIR", None)
    else:
        os.environ["DRIFTLOOP_SNAPSHOT_DIR"] = previous


@pytest.fixture(scope="session", autouse=True)
def _testclient_host_allowed() -> Iterator[None]:
    """Starlette's TestClient sends ``Host: testserver``; the open API answers loopback names
    only (DNS rebinding), so the suite allows that one name, as Django's test runner does."""
    previous = os.environ.get("DRIFTLOOP_ALLOWED_HOSTS")
    os.environ["DRIFTLOOP_ALLOWED_HOSTS"] = '["testserver"]'
    yield
    if previous is None:
        os.environ.pop("DRIFTLOOP_ALLOWED_HOSTS", None)
    else:
        os.environ["DRIFTLOOP_ALLOWED_HOSTS"] = previous


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    """An autocommit engine on the PostgreSQL server's ``test`` database."""
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        engine.dispose()
        need(False, f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc.orig}")
    yield engine
    engine.dispose()


def _pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def pg_template(pg_admin: Engine) -> Iterator[str]:
    """A migrated PostgreSQL database that per-test databases are copied from."""
    name = f"driftloop_tpl_{uuid.uuid4().hex[:10]}"
    with pg_admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(_pg_url(name))
    upgrade(engine)
    engine.dispose()
    yield name
    with pg_admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that per-test databases are copied from."""
    path = tmp_path_factory.mktemp("template") / "driftloop.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    raw = engine.raw_connection()  # a checkpoint cannot run inside a transaction
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
    finally:
        raw.close()
    engine.dispose()
    return path


@pytest.fixture
def pg_database_url(request: pytest.FixtureRequest, pg_admin: Engine) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    template = request.getfixturevalue("pg_template")
    name = f"driftloop_t_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield _pg_url(name)
    with pg_admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def sqlite_database_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh, migrated SQLite file for one test."""
    path = tmp_path / "driftloop.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh, migrated database: the same test runs on SQLite and on PostgreSQL."""
    name = "sqlite_database_url" if request.param == "sqlite" else "pg_database_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on :func:`database_url` (disposed after the test)."""
    made = make_engine(database_url)
    yield made
    made.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Embedded defaults on the test database, periodic jobs off (tests call run_once), and
    dataset snapshots in the test's folder rather than the working directory."""
    return Settings(
        database_url=database_url,
        jobs=JobSettings(enabled=False),
        snapshot_dir=str(tmp_path / "snapshots"),
    )


@pytest.fixture
def frozen_clock() -> FrozenClock:
    """A clock the test moves by hand."""
    return FrozenClock()


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    """The monitor app on the test database."""
    from driftloop.server import create_app

    application = create_app(settings)
    yield application
    application.state.driftloop.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """An HTTP client of the monitor app (lifespan included)."""
    with TestClient(app) as test_client:
        yield test_client
