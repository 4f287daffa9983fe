"""The shared web layer: what the monitor and feedback components both build on.

The process-wide state (:class:`MonitorState`, handed to routes by :func:`get_state` and to jobs
when they run), bearer tokens with scopes (:func:`require`), size-limited and gunzipped request
bodies (:class:`LimitedRoute`), the leader-elected job runner (:class:`JobRunner`) and the
server's own metrics (:class:`MonitorMetrics`). The composition root (``driftloop.server``) builds
them once; the components import them from here, never from each other.
"""

from typing import TYPE_CHECKING

from driftloop._lazy import lazy_exports

if TYPE_CHECKING:
    from driftloop.web.auth import authorize, require
    from driftloop.web.body import LimitedRoute, gunzip_limited, read_limited
    from driftloop.web.jobs import Job, JobRunner
    from driftloop.web.metrics import HTTPMetricsMiddleware, MonitorMetrics, metrics_response
    from driftloop.web.state import IngestHook, ModelSection, MonitorState, get_state

__all__ = [
    "HTTPMetricsMiddleware",
    "IngestHook",
    "Job",
    "JobRunner",
    "LimitedRoute",
    "ModelSection",
    "MonitorMetrics",
    "MonitorState",
    "authorize",
    "get_state",
    "gunzip_limited",
    "metrics_response",
    "read_limited",
    "require",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "driftloop.web.auth": ("authorize", "require"),
        "driftloop.web.body": ("LimitedRoute", "gunzip_limited", "read_limited"),
        "driftloop.web.jobs": ("Job", "JobRunner"),
        "driftloop.web.metrics": ("HTTPMetricsMiddleware", "MonitorMetrics", "metrics_response"),
        "driftloop.web.state": ("IngestHook", "ModelSection", "MonitorState", "get_state"),
    },
)
