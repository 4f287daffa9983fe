"""Fixtures of the dialect contract tests: each test runs once per database (the
``database_url`` fixture) against the dialect of a real, migrated database."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from driftloop.store.dialect import Dialect, dialect_of


@pytest.fixture
def dialect(engine: Engine) -> Dialect:
    return dialect_of(engine)
