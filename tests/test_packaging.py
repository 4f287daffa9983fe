"""The distribution maps every component folder into ``driftloop`` and pins its public surface."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import driftloop

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DIR = PYPROJECT["tool"]["setuptools"]["package-dir"]


def _packages_on_disk() -> set[str]:
    found = set()
    for package, folder in PACKAGE_DIR.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            parts = [] if str(relative) == "." else list(relative.parts)
            if "__pycache__" not in parts:
                found.add(".".join([package, *parts]))
    # Nested mappings (driftloop.monitor inside driftloop/) are found from their own folder.
    return found


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    assert _packages_on_disk() - listed == set()
    assert listed - _packages_on_disk() == set()


@pytest.mark.parametrize(
    ("package", "folder"),
    [
        ("driftloop.monitor", "monitor"),
        ("driftloop.serving", "serving"),
        ("driftloop.feedback", "feedback"),
    ],
)
def test_components_resolve_to_their_top_level_folders(package: str, folder: str) -> None:
    module = importlib.import_module(package)
    assert Path(module.__file__ or "").parent == ROOT / folder


def test_the_cli_answers_version_and_help() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "driftloop", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.strip() == f"driftloop {driftloop.__version__}"
    helptext = subprocess.run(
        [sys.executable, "-m", "driftloop", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("monitor", "demo", "db"):
        assert command in helptext


def test_the_store_exports_every_table_and_nothing_else_capitalised() -> None:
    import driftloop.store

    tables = {name for name in driftloop.store.__all__ if name[0].isupper()} - {
        "Base",
        "JSONType",
        "UTCDateTime",
    }
    mapped = {mapper.class_.__name__ for mapper in driftloop.store.Base.registry.mappers}
    assert tables == mapped, "every table is exported, and nothing else capitalised"
    for name in driftloop.store.__all__:
        assert hasattr(driftloop.store, name)
