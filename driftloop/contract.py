"""The wire contract (ARCHITECTURE §3): records, batches, labels and model schemas.

These models are the only shapes that cross process boundaries. They are strict about what the
database could not store faithfully (NUL characters, infinities, naive or out-of-range timestamps)
so that bad input is refused with a 422 naming the field instead of failing at commit time.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

import msgspec
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

SCHEMA_VERSION: Final = 1
"""Version of the record contract this code writes and accepts."""

ModelName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")]
"""A model name: letters, digits, ``_ . -``; safe in URLs, file names and Prometheus labels."""

IDENTIFIER_CHARACTER = r"[\x21-\x7e]"
"""One character of an identifier: printable ASCII, no space (the sidecar checks request ids with
it too, before they become record ids)."""

Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=rf"^{IDENTIFIER_CHARACTER}+$"),
]
"""Printable ASCII without spaces: request ids, versions, batch ids."""

_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)

Timestamp = Annotated[
    AwareDatetime,
    Field(
        ge=_EARLIEST,
        lt=_LATEST,
        # JSON Schema has no range for date-times: the published schema says it with the year.
        json_schema_extra={"pattern": r"^(19[7-9][0-9]|2[01][0-9][0-9])-"},
    ),
]
"""An instant between 1970 and 2200 with its offset; records normalise it to UTC."""

_NAMES: Final[dict[str, Any]] = {
    "propertyNames": {"minLength": 1, "maxLength": 200, "pattern": "^[^\\u0000]*$"}
}
"""JSON Schema of feature and output names (1 to 200 characters), as ``_storable`` checks."""

NUL_FREE: Final = "nul_free"
"""Validation context key: the JSON being validated holds no ``\\u0000`` escape, so no string in
it has a NUL character and the per-string check is skipped (see :func:`validate_batch_json`)."""


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


def _plain(value: dict[str, Any], nul_free: bool = False) -> bool:
    """Whether ``value`` (nested) needs no cleaning: no NaN or infinite float and, unless
    ``nul_free``, no NUL character in a string or key. The common case, checked without building
    anything."""
    stack: list[Any] = [value]
    while stack:
        container = stack.pop()
        if isinstance(container, dict):
            if not nul_free and any("\x00" in key for key in container):
                return False
            container = container.values()
        for item in container:
            if isinstance(item, float):
                if item - item != 0.0:  # inf - inf and nan - nan are nan
                    return False
            elif isinstance(item, str):
                if not nul_free and "\x00" in item:
                    return False
            elif isinstance(item, dict | list | tuple):
                stack.append(item)
    return True


_encode = msgspec.json.Encoder().encode


def document_json(value: dict[str, Any], where: str = "document") -> bytes:
    """The JSON text of a validated document, as stored.

    msgspec encodes a record's inputs in about half a microsecond, an eighth of ``json.dumps``;
    a value it does not know (a NumPy scalar) goes through ``json.dumps``.
    """
    try:
        text = _encode(value)
    except TypeError:
        try:
            text = json.dumps(value, allow_nan=False, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: not representable as JSON ({exc})") from exc
    return text


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
    timestamp: Timestamp
    inputs: dict[str, Any] = Field(json_schema_extra=_NAMES)
    outputs: dict[str, Any] = Field(default_factory=dict, json_schema_extra=_NAMES)
    latency_ms: float = Field(0.0, ge=0, le=86_400_000, allow_inf_nan=False)
    status: int = Field(200, ge=100, le=599)

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # The 1970..2200 range is checked by pydantic-core (Timestamp). The conversion also
        # swaps pydantic-core's tzinfo for datetime.UTC, whose offset costs nothing to ask:
        # isoformat() of a record's timestamp took 2.4 µs before, 0.4 µs after.
        return value.astimezone(UTC)

    @field_validator("inputs", "outputs")
    @classmethod
    def _storable(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        for key in value:
            if not 0 < len(key) <= 200:
                raise ValueError(f"names must have 1 to 200 characters, got {key[:40]!r}")
        nul_free = bool(info.context and info.context.get(NUL_FREE))
        return value if _plain(value, nul_free) else dict(_clean(value, ""))


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


# The fast path of ``POST /v1/records``: msgspec decodes and checks a batch in C at about a fifth
# of pydantic-core's cost with this contract's Python validators. It is at least as strict as
# the models above (tests/driftloop/test_contract.py holds it to that), so whatever it accepts
# the models would accept with the same values; whatever it refuses (NaN, a naive or
# out-of-range timestamp, a lax "200" for an int...) goes through the models, which decide
# and word the 422. The decoder checks lengths; the characters of identifiers and model names
# are checked after it, once per batch rather than by a regular expression per value (which
# cost more than the rest of the decoding).
_WireIdentifier = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
_WireName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")


class _WireRecord(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Fields in the order of Record's: a record's values become the model's ``__dict__``.
    schema_version: Literal[1] = SCHEMA_VERSION
    request_id: _WireIdentifier
    model: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    version: _WireIdentifier
    variant: Variant = Variant.champion
    timestamp: Annotated[datetime, msgspec.Meta(tz=True)]
    inputs: dict[_WireName, Any]
    outputs: dict[_WireName, Any] = {}
    latency_ms: Annotated[float, msgspec.Meta(ge=0, le=86_400_000)] = 0.0
    status: Annotated[int, msgspec.Meta(ge=100, le=599)] = 200


class _WireBatch(msgspec.Struct, forbid_unknown_fields=True):
    batch_id: _WireIdentifier
    records: list[_WireRecord]
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] = "unknown"


_decode_wire = msgspec.json.Decoder(_WireBatch).decode


def _identifiers(values: list[str]) -> bool:
    """Whether every one of ``values`` (non-empty, as the decoder checked) is printable ASCII
    without spaces: joined by single spaces, the text must be printable ASCII whose only spaces
    are the joins."""
    text = " ".join(values)
    spaces = max(len(values) - 1, 0)
    return text.isascii() and text.isprintable() and text.count(" ") == spaces


_RECORD_FIELDS = frozenset(Record.model_fields)
_BATCH_FIELDS = frozenset(Batch.model_fields)


# BaseModel's slots, set through their descriptors: ``object.__setattr__`` looks each one up
# through the model's class hierarchy, which made it three times as slow.
_SET_DICT = BaseModel.__dict__["__dict__"].__set__
_SET_FIELDS_SET = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_SET_EXTRA = BaseModel.__dict__["__pydantic_extra__"].__set__
_SET_PRIVATE = BaseModel.__dict__["__pydantic_private__"].__set__


def _trusted(cls: type[BaseModel], values: dict[str, Any], fields: frozenset[str]) -> Any:
    """An instance of the frozen pydantic model ``cls`` from values already validated to its
    rules, every field given: what ``model_construct`` does, at a twentieth of its cost."""
    instance = cls.__new__(cls)
    _SET_DICT(instance, values)
    _SET_FIELDS_SET(instance, set(fields))
    _SET_EXTRA(instance, None)
    _SET_PRIVATE(instance, None)
    return instance


def _fast_batch(raw: bytes) -> Batch | None:
    """The batch through the wire decoder, or None when it refuses or a value needs the
    models' judgement."""
    try:
        wire = _decode_wire(raw)
    except (msgspec.MsgspecError, ValueError):
        return None
    if not (
        _identifiers([wire.batch_id, *{r.version for r in wire.records}])
        and _identifiers([r.request_id for r in wire.records])
        and all(_MODEL_NAME.fullmatch(name) for name in {r.model for r in wire.records})
    ):
        return None
    records = []
    for r in wire.records:
        values = msgspec.structs.asdict(r)
        ts = r.timestamp
        if ts.tzinfo is not UTC:
            values["timestamp"] = ts = ts.astimezone(UTC)
        if not _EARLIEST <= ts < _LATEST:
            return None
        records.append(_trusted(Record, values, _RECORD_FIELDS))
    batch: Batch = _trusted(
        Batch,
        {"batch_id": wire.batch_id, "source": wire.source, "records": records},
        _BATCH_FIELDS,
    )
    return batch


def validate_batch_json(body: bytes | str) -> Batch:
    """A :class:`Batch` from JSON: the wire decoder's fast path, else the models.

    JSON can only spell a NUL character as the escape ``\\u0000``: a body without one has no
    NUL in any string or key, the one thing the wire decoder does not check.
    """
    raw = body.encode() if isinstance(body, str) else body
    nul_free = b"\\u0000" not in raw
    if nul_free:
        fast = _fast_batch(raw)
        if fast is not None:
            return fast
    return Batch.model_validate_json(raw, context={NUL_FREE: True} if nul_free else None)


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
    ``columns`` (for inputs) or the prediction itself (for outputs). ``protocol`` ``oip_v2``
    reads Open Inference Protocol v2 tensors (rows along the first dimension) instead.
    """

    model_config = ConfigDict(extra="forbid")

    input_path: str = "inputs"
    output_path: str = ""
    columns: list[str] | None = None
    protocol: Literal["json", "oip_v2"] = "json"
    inferred: str | None = Field(
        None,
        description="How a sender found this layout when none was registered (openapi, oip_v2, "
        "inputs, argument, records, object); None for a registered layout.",
    )


class ModelSchema(BaseModel):
    """Features, prediction kind and request layout of a model."""

    model_config = ConfigDict(extra="forbid")

    features: list[Feature] = Field(default_factory=list)
    prediction: Prediction = Field(default_factory=Prediction)
    layout: Layout | None = Field(
        None, description="Where rows live on every route; None: senders infer it per route."
    )
    routes: dict[str, Layout] = Field(
        default_factory=dict,
        description="Layouts per route (path): registered ones win; senders report inferred ones.",
    )
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


class RoutingMode(StrEnum):
    """How a sidecar splits requests between champion and challenger (the routing policy's
    ``mode``, shared by the monitor that writes it and the sidecar that follows it)."""

    single = "single"
    canary = "canary"
    ab = "ab"
    shadow = "shadow"


class RolloutStatus(StrEnum):
    """Where a rollout stands; ``active`` and ``paused`` still own the model's routing."""

    active = "active"
    paused = "paused"
    promoted = "promoted"
    rolled_back = "rolled_back"
    superseded = "superseded"

    @property
    def open(self) -> bool:
        """Still running (active or paused)."""
        return self in (RolloutStatus.active, RolloutStatus.paused)


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
