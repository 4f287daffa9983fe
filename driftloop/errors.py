"""The error tree: one root, narrow subclasses that also inherit the matching stdlib type.

Messages are built from the offending value so that a log line or an HTTP 4xx body names the
problem without a debugger.
"""

from __future__ import annotations


class DriftloopError(Exception):
    """Root of every error Driftloop raises on purpose."""


class ConfigurationError(DriftloopError, ValueError):
    """A setting or flag has a value Driftloop cannot work with."""


class ValidationError(DriftloopError, ValueError):
    """Input (a record, a label, a dataset) breaks the contract; ``errors`` names each field."""

    def __init__(self, message: str, errors: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class UnknownModelError(DriftloopError, LookupError):
    """No model with this name is registered."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown model {name!r}")
        self.name = name


class DatasetError(DriftloopError, ValueError):
    """A dataset file (Parquet or CSV) cannot be read or does not fit the model schema."""


class MissingExtraError(DriftloopError, ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""

    def __init__(self, module: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs {module!r}, which is not installed: pip install 'driftloop[{extra}]'",
            name=module,
        )
        self.extra = extra
