"""Driftloop serving: the sidecar proxy, the in-process middleware, capture and shipping of
records, champion/challenger routing, and wrapping models as Bentos.

Lives on the prediction path, so it imports nothing heavy: no scipy, pandas, SQLAlchemy or
Evidently, and ``prometheus_client`` only when metrics are created (after BentoML has set up
its multiprocess mode in a worker).
"""

from typing import TYPE_CHECKING

from driftloop._lazy import lazy_exports

if TYPE_CHECKING:
    from driftloop.serving.capture import Captured, RecordShape, extract_records, records_from
    from driftloop.serving.layout import infer_layout, layouts_from_openapi
    from driftloop.serving.middleware import DriftloopMiddleware
    from driftloop.serving.policy import PolicyPoller
    from driftloop.serving.proxy import ProxyApp
    from driftloop.serving.routing import Decision, Mode, RoutingPolicy, Upstream, choose
    from driftloop.serving.shipper import Shipper
    from driftloop.serving.sidecar import Sidecar, make_shipper, run_sidecar
    from driftloop.serving.sink import HttpSink, Outcome, Sink
    from driftloop.serving.spool import DiskSpool, MemorySpool, Spool

__all__ = [
    "Captured",
    "Decision",
    "DiskSpool",
    "DriftloopMiddleware",
    "HttpSink",
    "MemorySpool",
    "Mode",
    "Outcome",
    "PolicyPoller",
    "ProxyApp",
    "RecordShape",
    "RoutingPolicy",
    "Shipper",
    "Sidecar",
    "Sink",
    "Spool",
    "Upstream",
    "choose",
    "extract_records",
    "infer_layout",
    "layouts_from_openapi",
    "make_shipper",
    "records_from",
    "run_sidecar",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "driftloop.serving.capture": ("Captured", "RecordShape", "extract_records", "records_from"),
        "driftloop.serving.layout": ("infer_layout", "layouts_from_openapi"),
        "driftloop.serving.middleware": ("DriftloopMiddleware",),
        "driftloop.serving.policy": ("PolicyPoller",),
        "driftloop.serving.proxy": ("ProxyApp",),
        "driftloop.serving.routing": ("Decision", "Mode", "RoutingPolicy", "Upstream", "choose"),
        "driftloop.serving.shipper": ("Shipper",),
        "driftloop.serving.sidecar": ("Sidecar", "make_shipper", "run_sidecar"),
        "driftloop.serving.sink": ("HttpSink", "Outcome", "Sink"),
        "driftloop.serving.spool": ("DiskSpool", "MemorySpool", "Spool"),
    },
)
