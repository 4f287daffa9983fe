"""The monitor: stores records, computes drift, quality and performance, decides rollouts, and
exports everything to Prometheus. Build it with :func:`create_app`."""

from driftloop.monitor.app import COMPONENTS, create_app
from driftloop.monitor.state import MonitorState, get_state

__all__ = ["COMPONENTS", "MonitorState", "create_app", "get_state"]
