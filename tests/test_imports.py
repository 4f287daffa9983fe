"""Entry points pay only for what they use: each check runs in a fresh interpreter.

``driftloop drift`` needs the drift math and the file readers, not the web stack, the database or
Evidently; a package's ``__init__`` loads nothing heavy (its names are re-exported lazily).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_exports import PACKAGES

SERVER_SIDE = ("fastapi", "starlette", "sqlalchemy", "uvicorn", "evidently", "driftloop.feedback")
HEAVY = (*SERVER_SIDE, "pandas", "scipy", "numpy", "pydantic", "bentoml", "sklearn", "alembic")


def loaded_after(code: str) -> set[str]:
    """Top-level and driftloop module names present in ``sys.modules`` after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def heavy_in(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in modules or any(m.startswith(f"{n}.") for m in modules))


def test_the_drift_math_loads_no_web_stack_database_evidently_or_feedback() -> None:
    modules = loaded_after(
        "import driftloop.monitor.drift\n"
        "from driftloop.monitor.drift import compare_frame, infer_specs, Reference, DriftConfig"
    )
    assert heavy_in(modules, SERVER_SIDE) == []


def test_the_drift_command_loads_no_web_stack_database_evidently_or_feedback(
    tmp_path: Path,
) -> None:
    reference, current = tmp_path / "reference.csv", tmp_path / "current.csv"
    reference.write_text("x,c\n" + "".join(f"{i % 7},{'ab'[i % 2]}\n" for i in range(50)))
    current.write_text("x,c\n" + "".join(f"{i % 5},{'ab'[i % 3 % 2]}\n" for i in range(50)))
    modules = loaded_after(
        "import sys\n"
        "from driftloop.cli import main\n"
        f"sys.argv = ['driftloop', 'drift', {str(reference)!r}, {str(current)!r}, '--json']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
    )
    assert "driftloop.monitor.drift.frame" in modules  # the command did compare the files
    assert heavy_in(modules, SERVER_SIDE) == []


def test_the_command_line_loads_nothing_heavy_before_a_command_runs() -> None:
    modules = loaded_after("import driftloop.cli")
    assert heavy_in(modules, HEAVY) == []


@pytest.mark.parametrize(
    # The store is the database layer (SQLAlchemy's models load with it), and importing one of its
    # subpackages imports it first.
    "package",
    [p for p in PACKAGES if p != "driftloop.store" and not p.startswith("driftloop.store.")],
)
def test_importing_a_package_loads_nothing_heavy(package: str) -> None:
    others = tuple(n for n in HEAVY if not package.startswith(n))
    assert heavy_in(loaded_after(f"import {package}"), others) == []
