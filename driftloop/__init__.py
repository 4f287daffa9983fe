"""Driftloop: closes the MLOps loop for models served with BentoML.

The root package holds what every component shares: settings, the wire contract, the error tree,
the clock and the storage schema. The components are ``driftloop.serving``, ``driftloop.monitor``
and ``driftloop.feedback``.
"""

from typing import TYPE_CHECKING

from driftloop._lazy import lazy_exports

if TYPE_CHECKING:
    from driftloop._version import __version__
    from driftloop.clock import Clock, FrozenClock, SystemClock
    from driftloop.contract import (
        SCHEMA_VERSION,
        Batch,
        Feature,
        FeatureKind,
        Label,
        Layout,
        ModelRegistration,
        ModelSchema,
        Prediction,
        PredictionKind,
        Record,
        Role,
        Variant,
        VersionSpec,
    )
    from driftloop.errors import (
        ConfigurationError,
        DatasetError,
        DriftloopError,
        UnknownModelError,
        ValidationError,
    )
    from driftloop.settings import Scope, Settings, load_settings

__all__ = [
    "SCHEMA_VERSION",
    "Batch",
    "Clock",
    "ConfigurationError",
    "DatasetError",
    "DriftloopError",
    "Feature",
    "FeatureKind",
    "FrozenClock",
    "Label",
    "Layout",
    "ModelRegistration",
    "ModelSchema",
    "Prediction",
    "PredictionKind",
    "Record",
    "Role",
    "Scope",
    "Settings",
    "SystemClock",
    "UnknownModelError",
    "ValidationError",
    "Variant",
    "VersionSpec",
    "__version__",
    "load_settings",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "driftloop._version": ("__version__",),
        "driftloop.clock": ("Clock", "FrozenClock", "SystemClock"),
        "driftloop.contract": (
            "SCHEMA_VERSION",
            "Batch",
            "Feature",
            "FeatureKind",
            "Label",
            "Layout",
            "ModelRegistration",
            "ModelSchema",
            "Prediction",
            "PredictionKind",
            "Record",
            "Role",
            "Variant",
            "VersionSpec",
        ),
        "driftloop.errors": (
            "ConfigurationError",
            "DatasetError",
            "DriftloopError",
            "UnknownModelError",
            "ValidationError",
        ),
        "driftloop.settings": ("Scope", "Settings", "load_settings"),
    },
)
