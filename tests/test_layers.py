"""Components import each other's public names only: a package, never one of its modules.

The import directions themselves are import-linter contracts (``make lint``, see
``[tool.importlinter]`` in pyproject.toml); this adds what import-linter cannot say: when
``driftloop.monitor`` uses something of ``driftloop.serving`` (or any component of another), it
imports it from a package's ``__init__`` (which lists it in ``__all__``), not from a private module.
"""

from __future__ import annotations

import ast
import importlib.util
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
    "package-dir"
]
COMPONENTS = ("monitor", "feedback", "serving", "dashboards")


def component_of(module: str) -> str | None:
    parts = module.split(".")
    return (
        parts[1] if len(parts) > 1 and parts[0] == "driftloop" and parts[1] in COMPONENTS else None
    )


def imports_of(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every ``from driftloop... import ...`` in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name, []) for a in node.names)
    return found


def is_public(module: str, names: list[str]) -> bool:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.submodule_search_locations is None:
        return False  # a plain module: the package's private business
    package = importlib.import_module(module)
    return all(name in getattr(package, "__all__", ()) for name in names)


@pytest.mark.parametrize("component", COMPONENTS)
def test_a_component_uses_only_public_names_of_another(component: str) -> None:
    folder = ROOT / PACKAGE_DIR[f"driftloop.{component}"]
    offending = []
    for path in sorted(folder.rglob("*.py")):
        for line, module, names in imports_of(path):
            other = component_of(module)
            if other is None or other == component:
                continue
            if not is_public(module, names):
                where = path.relative_to(ROOT)
                offending.append(f"{where}:{line}: from {module} import {', '.join(names)}")
    assert offending == []


def test_the_check_sees_a_private_import() -> None:
    assert not is_public("driftloop.serving.capture", ["Captured"])
    assert is_public("driftloop.serving", ["Captured"])
    assert not is_public("driftloop.serving", ["_private_helper"])
