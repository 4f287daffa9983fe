"""Optional dependencies: what each extra brings, and a clear error when one is missing.

The core install (monitor, sidecar, CLI) leaves out what only one command needs::

    with needs_extra("reports", "the Evidently HTML report"):
        from evidently import Report

raises :class:`~driftloop.errors.MissingExtraError` (``pip install 'driftloop[reports]'``)
instead of a bare ``ModuleNotFoundError`` when Evidently is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from driftloop.errors import MissingExtraError

__all__ = ["EXTRAS", "needs_extra"]

EXTRAS = {
    "reports": ("evidently",),
    "bento": ("bentoml", "joblib"),
    "demo": ("sklearn", "bentoml", "joblib"),
    "dashboards": ("grafana_foundation_sdk",),
    "estimation": ("threadpoolctl",),
}
"""Extra name (``pyproject.toml``) -> the top-level modules it brings."""


@contextmanager
def needs_extra(extra: str, purpose: str) -> Iterator[None]:
    """Turn a missing module of ``extra`` imported in the block into :class:`MissingExtraError`."""
    try:
        yield
    except ModuleNotFoundError as exc:
        top = (exc.name or "").partition(".")[0]
        if top not in EXTRAS[extra]:
            raise  # a broken install of something else: not this extra's business
        raise MissingExtraError(top, extra, purpose) from exc
