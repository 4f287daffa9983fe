"""Driftloop serving: the sidecar proxy, the in-process middleware, capture and shipping of
records, champion/challenger routing, and wrapping models as Bentos.

Lives on the prediction path, so it imports nothing heavy: no scipy, pandas, SQLAlchemy or
Evidently, and ``prometheus_client`` only when metrics are created (after BentoML has set up
its multiprocess mode in a worker).
"""

from driftloop.serving.capture import Captured, RecordShape, extract_records
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
    "make_shipper",
    "run_sidecar",
]
