"""Driftloop: closes the MLOps loop for models served with BentoML.

The root package holds what every component shares: settings, the wire contract, the error tree,
the clock and the storage schema. The components are ``driftloop.serving``, ``driftloop.monitor``
and ``driftloop.feedback``.
"""

from importlib.metadata import PackageNotFoundError, version

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

try:
    __version__ = version("driftloop")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

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
