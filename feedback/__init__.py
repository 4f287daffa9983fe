"""Feedback: labels joined to records by request id, live model performance, dataset snapshots.

The public surface other components code against (retraining triggers, webhooks, rollouts):
:func:`labeled_rows`, :func:`window_rows`, :func:`label_count`, :func:`performance`,
:func:`create_snapshot` and :func:`get_snapshot`. The HTTP endpoints and the Prometheus
collector are installed in the monitor by ``driftloop.feedback.component.install``.
"""

from typing import TYPE_CHECKING

from driftloop._lazy import lazy_exports

if TYPE_CHECKING:
    from driftloop.feedback.join import label_count, labeled_rows, window_rows
    from driftloop.feedback.labels import LabelResult, store_labels
    from driftloop.feedback.performance import Options, performance
    from driftloop.feedback.snapshots import create_snapshot, get_snapshot, read_snapshot

__all__ = [
    "LabelResult",
    "Options",
    "create_snapshot",
    "get_snapshot",
    "label_count",
    "labeled_rows",
    "performance",
    "read_snapshot",
    "store_labels",
    "window_rows",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "driftloop.feedback.join": ("label_count", "labeled_rows", "window_rows"),
        "driftloop.feedback.labels": ("LabelResult", "store_labels"),
        "driftloop.feedback.performance": ("Options", "performance"),
        "driftloop.feedback.snapshots": ("create_snapshot", "get_snapshot", "read_snapshot"),
    },
)
