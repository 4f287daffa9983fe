"""The wire decoder (the fast path of ``POST /v1/records``) never accepts what the contract's
models refuse, and what it accepts comes out exactly as the models would make it."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from driftloop.contract import (
    Batch,
    Record,
    Variant,
    _fast_batch,
    _WireBatch,
    _WireRecord,
    validate_batch_json,
)


def test_the_wire_types_have_the_models_fields() -> None:
    assert set(_WireRecord.__struct_fields__) == set(Record.model_fields)
    assert set(_WireBatch.__struct_fields__) == set(Batch.model_fields)


def _models(raw: bytes) -> Batch | None:
    try:
        return Batch.model_validate_json(raw)
    except ValidationError:
        return None


identifiers = st.one_of(
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=5),
    st.sampled_from(["", "a b", "r\n", "x" * 201, "é", "ok\\", '"q"', "del\x7f", "tab\t"]),
    st.integers(),
)
timestamps = st.one_of(
    st.sampled_from(
        [
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00.123456+05:30",
            "2026-01-01T00:00:00-08:00",
            "1969-12-31T23:00:00-02:00",
            "1969-12-31T23:59:59Z",
            "2199-12-31T23:59:59Z",
            "2200-01-01T00:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01 00:00:00Z",
            "2026-13-01T00:00:00Z",
            "yesterday",
        ]
    ),
    st.integers(min_value=-(10**12), max_value=10**12),
)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**20), max_value=10**20),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=5),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
documents = st.dictionaries(
    st.one_of(st.text(max_size=4), st.just(""), st.just("k" * 201)), json_values, max_size=4
)
records = st.fixed_dictionaries(
    {
        "request_id": identifiers,
        "model": st.sampled_from(["m", "m-1.x", "-bad", "", "a" * 129, "ok_2"]),
        "version": identifiers,
        "timestamp": timestamps,
        "inputs": documents,
    },
    optional={
        "outputs": documents,
        "variant": st.sampled_from(["champion", "challenger", "shadow", "other", 1]),
        "latency_ms": st.one_of(
            st.floats(min_value=-1, max_value=1e8, allow_nan=False), st.just("5")
        ),
        "status": st.one_of(st.integers(min_value=0, max_value=700), st.just("200"), st.just(2.0)),
        "schema_version": st.sampled_from([1, 2, "1"]),
        "extra": st.just(1),
    },
)


@settings(max_examples=400, deadline=None)
@given(st.lists(records, min_size=1, max_size=3), st.sampled_from(["b1", "", "b 2"]))
def test_the_wire_decoder_accepts_nothing_the_models_refuse(
    batch_records: list[dict[str, Any]], batch_id: str
) -> None:
    raw = json.dumps({"batch_id": batch_id, "records": batch_records}).encode()
    fast, slow = _fast_batch(raw), _models(raw)
    if fast is None:
        return
    assert slow is not None, f"the wire decoder accepted what the models refuse: {raw!r}"
    assert fast == slow
    assert fast.model_dump() == slow.model_dump()
    for record in fast.records:
        assert record.timestamp.tzinfo is UTC
        assert isinstance(record.variant, Variant)


def test_valid_batches_take_the_fast_path() -> None:
    raw = json.dumps(
        {
            "batch_id": "b1",
            "records": [
                {
                    "request_id": "r1",
                    "model": "m",
                    "version": "v1",
                    "timestamp": "2026-01-01T00:00:00+02:00",
                    "inputs": {"x": 1.5, "y": "blue"},
                    "outputs": {"prediction": "cat", "probabilities": [0.2, 0.8]},
                }
            ],
        }
    ).encode()
    fast = _fast_batch(raw)
    assert fast is not None
    assert fast == Batch.model_validate_json(raw)
    assert fast.records[0].timestamp.isoformat() == "2025-12-31T22:00:00+00:00"


@pytest.mark.parametrize(
    ("inputs", "outcome"),
    [
        ('{"x": NaN}', {"x": None}),  # NaN is pandas' missing value: stored as null
        ('{"x": 1e999}', "infinite numbers are not allowed"),
        ('{"x": Infinity}', "infinite numbers are not allowed"),
        ('{"x": "a\\u0000b"}', "NUL characters are not allowed"),
        ('{"x\\u0000": 1}', "NUL characters are not allowed in keys"),
    ],
)
def test_what_json_cannot_store_goes_to_the_models(inputs: str, outcome: Any) -> None:
    raw = (
        '{"batch_id": "b", "records": [{"request_id": "r", "model": "m", "version": "v",'
        f' "timestamp": "2026-01-01T00:00:00Z", "inputs": {inputs}}}]}}'
    )
    assert _fast_batch(raw.encode()) is None or "u0000" in raw
    if isinstance(outcome, dict):
        assert validate_batch_json(raw).records[0].inputs == outcome
        return
    with pytest.raises(ValidationError, match=outcome):
        validate_batch_json(raw)


def test_an_empty_batch_takes_the_fast_path() -> None:
    raw = b'{"batch_id": "b", "records": []}'
    fast = _fast_batch(raw)
    assert fast is not None
    assert fast == Batch.model_validate_json(raw)
