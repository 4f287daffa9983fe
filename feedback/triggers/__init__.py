"""Retraining triggers: per-model policies, their evaluation, and the training-system callback."""

from typing import TYPE_CHECKING

from driftloop._lazy import lazy_exports

if TYPE_CHECKING:
    from driftloop.feedback.triggers.component import evaluate_all, install
    from driftloop.feedback.triggers.conditions import REASONS, Finding
    from driftloop.feedback.triggers.evaluate import CooldownError, Fired, evaluate_model, manual
    from driftloop.feedback.triggers.fire import callback_url, fire, payload
    from driftloop.feedback.triggers.policy import (
        DegradationRule,
        DriftRule,
        EstimatedDegradationRule,
        RetrainingPolicy,
        SnapshotSpec,
        load_policy,
        save_policy,
    )

__all__ = [
    "REASONS",
    "CooldownError",
    "DegradationRule",
    "DriftRule",
    "EstimatedDegradationRule",
    "Finding",
    "Fired",
    "RetrainingPolicy",
    "SnapshotSpec",
    "callback_url",
    "evaluate_all",
    "evaluate_model",
    "fire",
    "install",
    "load_policy",
    "manual",
    "payload",
    "save_policy",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "driftloop.feedback.triggers.component": ("evaluate_all", "install"),
        "driftloop.feedback.triggers.conditions": ("REASONS", "Finding"),
        "driftloop.feedback.triggers.evaluate": (
            "CooldownError",
            "Fired",
            "evaluate_model",
            "manual",
        ),
        "driftloop.feedback.triggers.fire": ("callback_url", "fire", "payload"),
        "driftloop.feedback.triggers.policy": (
            "DegradationRule",
            "DriftRule",
            "EstimatedDegradationRule",
            "RetrainingPolicy",
            "SnapshotSpec",
            "load_policy",
            "save_policy",
        ),
    },
)
