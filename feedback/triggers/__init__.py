"""Retraining triggers: per-model policies, their evaluation, and the training-system callback."""

from driftloop.feedback.triggers.component import evaluate_all, install
from driftloop.feedback.triggers.conditions import REASONS, Finding
from driftloop.feedback.triggers.evaluate import CooldownError, Fired, evaluate_model, manual
from driftloop.feedback.triggers.fire import callback_url, fire, payload
from driftloop.feedback.triggers.policy import (
    DegradationRule,
    DriftRule,
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
