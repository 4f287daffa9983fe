"""The status page at ``/``: server-rendered HTML, no external assets, readable on a laptop.

The page lives in :mod:`~driftloop.monitor.status.page`; :func:`install` serves it.
"""

from typing import TYPE_CHECKING

from driftloop._lazy import lazy_exports

if TYPE_CHECKING:
    from driftloop.monitor.status.page import install, model_view, router

__all__ = ["install", "model_view", "router"]

__getattr__, __dir__ = lazy_exports(
    __name__, {"driftloop.monitor.status.page": ("install", "model_view", "router")}
)
