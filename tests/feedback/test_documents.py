"""Columns of JSON documents: Arrow's typed fast path and the per-row fallback agree."""

from __future__ import annotations

import json

import numpy as np
import pytest

from driftloop.feedback.documents import Documents

ROWS = [
    {"n": 1, "x": 0.5, "flag": True, "city": "paris", "p": {"a": 0.2, "b": 0.8}, "q": [0.1, 0.9]},
    {"n": 2, "x": None, "flag": False, "city": None, "p": {"a": 0.6}, "q": [0.3]},
    {"n": 3, "flag": None, "p": None},
]
MIXED = {"n": "three", "x": "n/a"}  # one field a number here and a string there: no Arrow type


@pytest.mark.parametrize("mixed", [False, True], ids=["arrow", "fallback"])
def test_fields_keep_their_json_types(mixed: bool) -> None:
    rows = [*ROWS, MIXED] if mixed else ROWS
    docs = Documents([json.dumps(r) for r in rows] + [None])
    assert docs.rows == len(rows) + 1
    assert docs.values("city").tolist()[:3] == ["paris", None, None]
    flags = docs.values("flag").tolist()
    assert flags[:3] == [True, False, None]
    assert isinstance(flags[0], bool | np.bool_)
    numbers = docs.numbers("x").tolist()
    assert numbers[0] == 0.5
    assert np.isnan(numbers[1:]).all(), "null, absent and 'n/a' are not numbers"
    n = docs.values("n").tolist()
    assert n[:3] == [1, 2, 3]
    assert n[3:] == (["three", None] if mixed else [None])
    assert docs.values("absent").isna().all()
    scores = docs.score_matrix("p", ["a", "b"])
    assert scores is not None
    assert scores[0] == ["a", "b"]
    assert scores[1][0].tolist() == [0.2, 0.8]
    assert np.isnan(scores[1][1:3]).all(), "a row without a full set has no scores"
    by_position = docs.score_matrix("q", ["a", "b"])
    assert by_position is not None
    assert by_position[1][0].tolist() == [0.1, 0.9]
    assert np.isnan(by_position[1][1:3]).all()
    undeclared = docs.score_matrix("p", [])
    assert undeclared is not None, "an object's keys name the classes when none are declared"
    assert undeclared[0] == ["a", "b"]
    assert undeclared[1][0].tolist() == [0.2, 0.8]
    assert docs.score_matrix("q", []) is None, "a list says nothing of its classes"
    assert docs.score_matrix("city", ["a", "b"]) is None
    assert {"n", "x", "flag", "city"} <= set(docs.keys())
