"""No code outside the store seam tests which database it runs on: it asks the dialect.

The store seam (``driftloop.store.dialect``) holds what differs between SQLite and PostgreSQL.
This scans every package folder except the seam itself for the marks of a dialect branch: a test
of the dialect's name or of the URL, a database-specific SQLAlchemy construct, database-specific
SQL, or a driver module. What is left is listed in :data:`ALLOWED`, each entry with the number of
lines it covers and the reason: one more branch fails (in a new file or an allowed one), and so
does one fewer, so the list stays honest and the count only goes down on purpose.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGE_DIR: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"][
    "setuptools"
]["package-dir"]
SEAM = ROOT / PACKAGE_DIR["driftloop"] / "store" / "dialect"

BRANCH = re.compile(
    r"dialect\.name"  # if engine.dialect.name == "postgresql"
    r"|\bis_sqlite\b"  # settings.is_sqlite
    r"|[!=]=\s*[\"'](?:postgresql|sqlite)[\"']"  # name == "sqlite"
    r"|startswith\(\(?[\"'](?:sqlite|postgres)"  # url.startswith("sqlite")
    r"|\bsqlalchemy\.dialects\b"  # postgresql.insert, ARRAY, JSONB
    r"|\bpg_\w+\("  # pg_try_advisory_lock(...), pg_total_relation_size(...)
    r"|\bPRAGMA\b"  # SQLite's pragmas
    r"|\bsqlite3\.|^\s*(?:import|from)\s+(?:sqlite3|psycopg|adbc_driver_\w+)\b"  # a driver
)

ALLOWED: dict[tuple[str, str], tuple[int, str]] = {
    # The foundation the seam stands on.
    ("driftloop/settings.py", "startswith"): (
        3,
        "validates the URL and picks the driver (postgresql:// becomes postgresql+psycopg://) "
        "before any engine, so any dialect, exists",
    ),
    ("driftloop/settings.py", "is_sqlite"): (1, "the property itself (a URL test, no engine)"),
    ("driftloop/store/engine.py", ""): (
        8,
        "make_engine configures the engine from its URL (pool, pragmas, BEGIN IMMEDIATE) before "
        "a dialect can be chosen from it; the session's get_bind hook reads SQLite deferred",
    ),
    ("driftloop/store/base.py", ""): (
        2,
        "column types: SQLAlchemy's own per-database types (JSONB variant, naive UTC timestamps "
        "for SQLite), resolved by SQLAlchemy when it compiles",
    ),
    ("driftloop/store/errors.py", "sqlite3"): (
        2,
        "classifies a failure by the driver's exception type: the exception is all there is "
        "(no engine at hand where a request fails)",
    ),
    ("driftloop/store/migrations/", ""): (
        10,
        "each revision's DDL as it was written: history is not rewritten through the seam",
    ),
    ("driftloop/store/partitions.py", ""): (
        5,
        "PostgreSQL's day partitions: the module PostgresDialect's partition members delegate "
        "to (its guard lets bench and migrations call it on any database)",
    ),
}
"""``(file or folder, text on the line) -> (lines, why the branches stay)``; paths relative to the
repository, a folder ends with ``/``; an empty text matches every branch of the file."""


def branches() -> list[tuple[str, int, str]]:
    """``(file, line number, line)`` of every dialect branch outside the seam."""
    found = []
    for folder in sorted({ROOT / d for d in PACKAGE_DIR.values()}):
        for path in sorted(folder.rglob("*.py")):
            if path.is_relative_to(SEAM):
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                if BRANCH.search(code):
                    found.append((str(path.relative_to(ROOT)), number, line.strip()))
    return found


def entry_of(path: str, line: str) -> tuple[str, str] | None:
    """The :data:`ALLOWED` entry that covers ``line`` of ``path``, if any."""
    for where, text in ALLOWED:
        here = path.startswith(where) if where.endswith("/") else path == where
        if here and text in line:
            return where, text
    return None


def test_no_module_outside_the_seam_branches_on_the_database() -> None:
    offending = [f"{p}:{n}: {line}" for p, n, line in branches() if entry_of(p, line) is None]
    assert not offending, (
        "ask driftloop.store.dialect.dialect_of(engine) instead of testing the database "
        "(or add the branch to ALLOWED with the reason):\n" + "\n".join(offending)
    )


def test_each_allowed_entry_covers_exactly_its_count() -> None:
    counts = dict.fromkeys(ALLOWED, 0)
    for path, _, line in branches():
        entry = entry_of(path, line)
        if entry is not None:
            counts[entry] += 1
    expected = {key: lines for key, (lines, _) in ALLOWED.items()}
    assert counts == expected, (
        "a branch came or went: update ALLOWED (remove an entry that covers nothing)"
    )


def test_the_scan_sees_a_branch_when_there_is_one() -> None:
    samples = [
        'if session.get_bind().dialect.name == "postgresql":',
        'postgres = name == "postgresql"',
        "from sqlalchemy.dialects import postgresql, sqlite",
        'text("SELECT pg_try_advisory_lock(:key)")',
        'connection.exec_driver_sql("PRAGMA page_count")',
        "pause = SQLITE_PAUSE if settings.is_sqlite else 0.0",
        'if url.startswith("sqlite"):',
        "import psycopg",
        "from adbc_driver_postgresql import dbapi as adbc",
        "if isinstance(orig, sqlite3.OperationalError):",
    ]
    assert [s for s in samples if not BRANCH.search(s)] == []
    for clean in (
        "dialect_of(session).insert(Model)",
        "with_for_update=dialect_of(session).locks_rows",
        'url = "postgresql+psycopg://u@h/db"',
    ):
        assert not BRANCH.search(clean)
