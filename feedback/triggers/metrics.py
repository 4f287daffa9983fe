"""The retraining trigger counter, one per registry (the app's injected one)."""

from __future__ import annotations

import threading
import weakref

from prometheus_client import CollectorRegistry, Counter

_counters: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def trigger_counter(registry: CollectorRegistry) -> Counter:
    """``driftloop_retrain_triggers_total{model, reason}`` on ``registry`` (created once)."""
    with _lock:
        counter = _counters.get(registry)
        if counter is None:
            counter = Counter(
                "driftloop_retrain_triggers",
                "Retraining triggers fired, by model and reason "
                "(manual, schedule, new_labels, degradation, estimated_degradation, drift).",
                ["model", "reason"],
                registry=registry,
            )
            _counters[registry] = counter
        return counter


def count_trigger(registry: CollectorRegistry, model: str, reason: str) -> None:
    """Count one fired trigger."""
    trigger_counter(registry).labels(model, reason).inc()
