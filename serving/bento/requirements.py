"""The Python packages a generated Bento needs, pinned to the versions the model was trained with.

The generated service imports ``joblib`` and ``numpy`` (and ``pandas`` for a model fitted on a
DataFrame) and unpickles the model, which needs the library that defined it: the distribution of
every top-level module that the model's object graph comes from (scikit-learn for a pipeline,
xgboost, lightgbm ...). Versions are those installed here, which unpickled the model, except
where the pickle recorded another (scikit-learn records its own). BentoML adds ``bentoml``
itself. With capture on, Driftloop comes as a wheel built from the source checkout, or as
``driftloop==<version>`` from the package index when it was installed from one.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["driftloop_wheel", "model_modules", "model_requirements"]

log = logging.getLogger(__name__)

PACKAGE_FOLDERS = ("driftloop", "serving", "monitor", "feedback", "dashboards")
"""Folders of the checkout that pyproject.toml maps to packages."""

_SKIP = {"builtins", "__main__", "copyreg", "collections", "functools", "typing", "enum"}


def model_modules(model: Any, limit: int = 10_000) -> set[str]:
    """Top-level modules of the classes in ``model``'s object graph (estimators nested in
    pipelines, ensembles and wrappers included), walked breadth-first over ``__dict__``, lists,
    tuples and dicts, at most ``limit`` objects."""
    seen: set[int] = set()
    found: set[str] = set()
    queue: list[Any] = [model]
    while queue and len(seen) < limit:
        obj = queue.pop()
        if id(obj) in seen or isinstance(obj, str | bytes | int | float | bool | type(None)):
            continue
        seen.add(id(obj))
        found.add(type(obj).__module__.split(".")[0])
        if isinstance(obj, dict):
            queue.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            queue.extend(obj)
        elif hasattr(obj, "__dict__") and not isinstance(obj, type):
            queue.extend(vars(obj).values())
    return {m for m in found if m not in _SKIP and m not in sys.stdlib_module_names}


def _distribution(module: str) -> str | None:
    names = metadata.packages_distributions().get(module)
    return names[0] if names else None


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def model_requirements(
    model: Any, *, frame_input: bool, trained: dict[str, str] | None = None
) -> list[str]:
    """``name==version`` lines for the Bento: the service's imports and the model's libraries."""
    trained = trained or {}
    wanted = {"joblib", "numpy"} | ({"pandas"} if frame_input else set())
    for module in sorted(model_modules(model)):
        distribution = _distribution(module)
        if distribution is None:
            log.warning(
                "model class module %r belongs to no installed distribution: add it to the "
                "Bento yourself if the service cannot import it",
                module,
            )
            continue
        wanted.add(distribution)
    wanted -= {"bentoml", "driftloop"}
    pins = []
    for distribution in sorted(wanted, key=str.lower):
        version = trained.get(distribution) or _version(distribution)
        pins.append(f"{distribution}=={version}" if version else distribution)
    return pins


def _source_tree() -> Path | None:
    """The checkout Driftloop runs from (an editable install), or None."""
    import driftloop

    root = Path(driftloop.__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "serving").is_dir() else None


def driftloop_wheel(folder: Path) -> Path | None:
    """Build a Driftloop wheel from the source checkout into ``folder``; None when Driftloop
    was installed from a package index (the Bento then names ``driftloop==<version>``)."""
    root = _source_tree()
    if root is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    # Build from a copy: an in-tree build would leave build/ and egg-info in the checkout.
    copy = folder / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in (*PACKAGE_FOLDERS, "pyproject.toml", "README.md"):
        source = root / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=ignore)
        elif source.is_file():
            shutil.copy2(source, copy / name)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(folder), str(copy)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    shutil.rmtree(copy, ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(f"cannot build the Driftloop wheel from {root}: {done.stderr[-2000:]}")
    wheels = sorted(folder.glob("driftloop-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip wheel built no driftloop wheel from {root}")
    return wheels[-1]
