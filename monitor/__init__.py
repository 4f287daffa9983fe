"""The monitor: stores records, computes drift, quality and performance, decides rollouts, and
exports everything to Prometheus.

The app that serves it (with feedback) is built by the composition root,
:func:`driftloop.server.create_app`; ``create_app`` and ``COMPONENTS`` stay importable from here
for existing callers.
"""

from typing import TYPE_CHECKING

from driftloop._lazy import lazy_exports

if TYPE_CHECKING:
    from driftloop.server import COMPONENTS, create_app
    from driftloop.web.state import MonitorState, get_state

__all__ = ["COMPONENTS", "MonitorState", "create_app", "get_state"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "driftloop.server": ("COMPONENTS", "create_app"),
        "driftloop.web.state": ("MonitorState", "get_state"),
    },
)
