"""Every package's ``__all__`` is exactly what it defines and re-exports (the httpx way).

One generated test instead of a hand-copied list per package: adding a public name to a package
without listing it in ``__all__`` fails here, and so does listing a name that does not resolve. A
lazily re-exported name must also be imported under ``TYPE_CHECKING`` from the same module, so
type checkers see what ``__getattr__`` returns.
"""

from __future__ import annotations

import ast
import importlib
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGES = sorted(p for p in PYPROJECT["tool"]["setuptools"]["packages"] if ".migrations" not in p)
"""Every package of the distribution except Alembic's migration folders (scripts, no API)."""

HELPERS = {"TYPE_CHECKING", "annotations", "lazy_exports"}
"""Names an ``__init__`` binds to do its work, not part of its surface."""


def isort_key(name: str) -> tuple[int, str]:
    """Ruff's order for ``__all__``: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def public_names(package: ModuleType) -> set[str]:
    """Names the package defines or re-exports: everything public in ``dir`` but submodules."""
    names = set()
    for name in dir(package):
        if name.startswith("_") or name in HELPERS:
            continue
        if isinstance(getattr(package, name), ModuleType):
            continue  # a submodule someone imported, not a name the package offers
        names.add(name)
    return names


def type_checking_imports(package: ModuleType) -> dict[str, str]:
    """``{name: module}`` imported under ``if TYPE_CHECKING:`` in the package's ``__init__``."""
    tree = ast.parse(Path(package.__file__ or "").read_text())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom) and statement.module:
                    for alias in statement.names:
                        found[alias.asname or alias.name] = statement.module
    return found


@pytest.mark.parametrize("name", PACKAGES)
def test_all_lists_exactly_what_the_package_defines_and_reexports(name: str) -> None:
    package = importlib.import_module(name)
    declared = getattr(package, "__all__", None)
    assert declared is not None, f"{name} has no __all__"
    public = {n for n in declared if not n.startswith("_")}
    assert public == public_names(package)
    assert list(declared) == sorted(declared, key=isort_key), f"{name}.__all__ is not sorted"
    assert len(set(declared)) == len(declared), f"{name}.__all__ repeats a name"
    for exported in declared:
        value = getattr(package, exported)
        if callable(value) and getattr(value, "__module__", "").startswith("driftloop"):
            assert value.__doc__, f"{name}.{exported} has no docstring"


@pytest.mark.parametrize("name", PACKAGES)
def test_lazy_names_are_visible_to_type_checkers(name: str) -> None:
    package = importlib.import_module(name)
    lazy = getattr(package, "_lazy_exports", {})
    imported = type_checking_imports(package)
    assert {n: imported.get(n) for n in lazy} == dict(lazy)


@pytest.mark.parametrize("name", PACKAGES)
def test_a_name_the_package_does_not_offer_is_an_attribute_error(name: str) -> None:
    package = importlib.import_module(name)
    with pytest.raises(AttributeError, match="no_such_name"):
        package.no_such_name  # noqa: B018
