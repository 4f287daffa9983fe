"""Lazy re-exports (PEP 562), so importing a package costs only what is used from it.

A package's ``__init__`` names where each public name lives and imports nothing else::

    __getattr__, __dir__ = lazy_exports(__name__, {"driftloop.web.state": ("MonitorState",)})

The first ``driftloop.web.MonitorState`` imports ``driftloop.web.state`` and caches the object on
the package. ``driftloop.monitor.drift`` therefore no longer drags in the web stack,
and ``driftloop --help`` no longer pays for pydantic. The same names are imported under
``TYPE_CHECKING`` for type checkers; ``tests/test_exports.py`` keeps the two lists and
``__all__`` equal.

When a re-exported object shares its name with a submodule (``feedback.performance`` is both a
function and a module), the object wins, as it did with eager ``from .x import x``: the import
system's binding of the submodule onto the package is ignored for that name.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any

__all__ = ["lazy_exports"]


class _LazyPackage(ModuleType):
    """A package whose re-exported names shadow same-named submodules, as eager imports did."""

    _lazy_exports: Mapping[str, str] = {}
    """Re-exported name -> the module that defines it."""

    def __setattr__(self, name: str, value: Any) -> None:
        if (
            name in self._lazy_exports
            and isinstance(value, ModuleType)
            and value.__name__ == f"{self.__name__}.{name}"
        ):
            return  # the submodule stays reachable through sys.modules and its own imports
        super().__setattr__(name, value)


def lazy_exports(
    package: str, exports: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` for ``package``, re-exporting ``{module: names}``."""
    where = {name: module for module, names in exports.items() for name in names}
    target = sys.modules[package]
    target.__class__ = _LazyPackage
    target._lazy_exports = where  # type: ignore[attr-defined]

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        # Bypass the submodule guard: this is the object itself, cached for the next lookup.
        ModuleType.__setattr__(target, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(target), *where})

    return __getattr__, __dir__
