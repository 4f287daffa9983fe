"""The wire contract (ARCHITECTURE §3): records, batches, labels and model schemas.

These models are the only shapes that cross process boundaries. They are strict about what the
database could not store faithfully (NUL characters, infinities, naive or out-of-range timestamps)
so that bad input is refused with a 422 naming the field instead of failing at commit time.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

SCHEMA_VERSION: Final = 1
"""Version of the record contract this code writes and accepts."""

ModelName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")]
"""A model name: letters, digits, ``_ . -``; safe in URLs, file names and Prometheus labels."""

Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")
]
"""Printable ASCII without spaces: request ids, versions, batch ids."""

_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)


class Variant(StrEnum):
    """Which deployment answered: the champion, the challenger, or a shadow copy."""

    champion = "champion"
    challenger = "challenger"
    shadow = "shadow"


class FeatureKind(StrEnum):
    """How a feature is compared: as numbers or as categories."""

    numerical = "numerical"
    categorical = "categorical"


class PredictionKind(StrEnum):
    """What the model predicts."""

    classification = "classification"
    regression = "regression"


def clean_json(value: Any, where: str = "") -> Any:
    """Return ``value`` with NaN replaced by ``None``; reject what no JSON store keeps.

    NaN is how pandas and NumPy spell *missing*, so it becomes null; infinities and NUL characters
    cannot be stored in PostgreSQL JSONB and are refused with the path of the offending value.
    The common case (nothing to clean) is one C-speed ``json.dumps``; only a value that needs
    cleaning is walked in Python.
    """
    try:
        text = json.dumps(value, allow_nan=False)
    except (ValueError, TypeError):
        return _clean(value, where)
    return _clean(value, where) if "\\u0000" in text else value


def _clean(value: Any, where: str) -> Any:
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise ValueError(f"{where or 'value'}: infinite numbers are not allowed")
        return value
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where or 'value'}: NUL characters are not allowed")
        return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if "\x00" in str(key):
                raise ValueError(f"{where or 'object'}: NUL characters are not allowed in keys")
            out[str(key)] = _clean(item, f"{where}.{key}" if where else str(key))
        return out
    if isinstance(value, list | tuple):
        return [_clean(item, f"{where}[{i}]") for i, item in enumerate(value)]
    return value


def _check_timestamp(value: datetime) -> datetime:
    try:
        value = value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ValueError(f"timestamp {value!r} cannot be expressed in UTC") from exc
    if not _EARLIEST <= value < _LATEST:
        raise ValueError(f"timestamp {value.isoformat()} is outside 1970..2200")
    return value


class Record(BaseModel):
    """One prediction row as logged by a sidecar or the middleware."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    request_id: Identifier
    model: ModelName
    version: Identifier
    variant: Variant = Variant.champion
    timestamp: AwareDatetime
    inputs: dict[str, Any]
    outputs: dict[str, Any] = Field(default_factory=dict)
    latency_ms: float = Field(0.0, ge=0, le=86_400_000, allow_inf_nan=False)
    status: int = Field(200, ge=100, le=599)

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _check_timestamp(value)

    @field_validator("inputs", "outputs")
    @classmethod
    def _storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not 0 < len(key) <= 200:
                raise ValueError(f"names must have 1 to 200 characters, got {key[:40]!r}")
        cleaned: dict[str, Any] = clean_json(value)
        return cleaned


class Batch(BaseModel):
    """What a sender POSTs to ``/v1/records``; may be gzip-encoded."""

    model_config = ConfigDict(extra="forbid")

    batch_id: Identifier
    source: Annotated[str, StringConstraints(min_length=1, max_length=200)] = "unknown"
    records: list[Record]

    @field_validator("source")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        return str(clean_json(value, "source"))


LabelValue = bool | int | float | str


class Label(BaseModel):
    """Ground truth for one request id; a later label for the same id is a correction."""

    model_config = ConfigDict(extra="forbid")

    request_id: Identifier
    label: LabelValue
    model: ModelName | None = None
    timestamp: AwareDatetime | None = None

    @field_validator("label")
    @classmethod
    def _finite(cls, value: LabelValue) -> LabelValue:
        result: LabelValue = clean_json(value, "label")
        if result is None:
            raise ValueError("label: NaN is not a label")
        return result

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _check_timestamp(value)


class Feature(BaseModel):
    """One input column of a model."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    kind: FeatureKind
    segment: bool = Field(False, description="Report performance per value of this feature.")
    drift_method: str | None = Field(None, description="Override of the default drift method.")
    materiality: float | None = Field(None, ge=0, description="Override of the effect threshold.")

    @field_validator("name")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        return str(clean_json(value, "name"))


class Prediction(BaseModel):
    """What the model predicts and where the response carries it."""

    model_config = ConfigDict(extra="forbid")

    kind: PredictionKind = PredictionKind.classification
    classes: list[LabelValue] | None = Field(None, description="Known classes (classification).")
    field: str = Field("prediction", description="Key of the prediction in record outputs.")
    scores_field: str = Field(
        "probabilities", description="Key of class scores in record outputs, when logged."
    )

    @field_validator("classes")
    @classmethod
    def _clean(cls, value: list[LabelValue] | None) -> list[LabelValue] | None:
        return None if value is None else clean_json(value, "classes")


class Layout(BaseModel):
    """Where rows live in the request and response JSON of the served model.

    ``input_path``/``output_path`` are dotted keys into the JSON body (empty: the body itself).
    Rows there may be a list of objects, a single object, or a 2-D array whose columns are
    ``columns`` (for inputs) or the prediction itself (for outputs).
    """

    model_config = ConfigDict(extra="forbid")

    input_path: str = "inputs"
    output_path: str = ""
    columns: list[str] | None = None


class ModelSchema(BaseModel):
    """Features, prediction kind and request layout of a model."""

    model_config = ConfigDict(extra="forbid")

    features: list[Feature] = Field(default_factory=list)
    prediction: Prediction = Field(default_factory=Prediction)
    layout: Layout = Field(default_factory=Layout)
    label_column: str | None = Field(None, description="Label column in reference data.")

    @model_validator(mode="after")
    def _unique_features(self) -> ModelSchema:
        seen: set[str] = set()
        for feature in self.features:
            if feature.name in seen:
                raise ValueError(f"feature {feature.name!r} is declared twice")
            seen.add(feature.name)
        return self

    def feature(self, name: str) -> Feature | None:
        """Return the feature called ``name``, if declared."""
        return next((f for f in self.features if f.name == name), None)


class Role(StrEnum):
    """The part a model version plays in serving."""

    champion = "champion"
    challenger = "challenger"
    retired = "retired"


class VersionSpec(BaseModel):
    """A model version as registered through the API."""

    model_config = ConfigDict(extra="forbid")

    version: Identifier
    role: Role = Role.champion
    url: Annotated[str, StringConstraints(max_length=2000)] | None = None


class ModelRegistration(BaseModel):
    """Body of ``POST /v1/models``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: ModelName
    model_schema: ModelSchema | None = Field(None, alias="schema")
    versions: list[VersionSpec] = Field(default_factory=list)
