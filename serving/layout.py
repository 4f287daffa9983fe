"""Layout inference: where the rows are in a request nobody described (issue 23).

When a model's schema declares no layout, senders look at each route themselves. In order:

1. the model server's own OpenAPI document (BentoML 1.4 serves it at ``/docs.json``): a route
   whose JSON body has one argument holding a table (a DataFrame, a list of objects, an array)
   reads rows from that argument; a route with several typed arguments is one row per request;
2. Open Inference Protocol v2 tensors: ``{"inputs": [{"name", "shape", "datatype", "data"}]}``;
3. ``{"inputs": ...}`` (and the other usual envelopes: ``instances``, ``dataframe_records``,
   ``dataframe_split``);
4. a single argument holding a list of objects or a column-oriented object (a DataFrame);
5. a list of objects (or a 2-D array);
6. an object of scalars: one row.

Everything here is pure and cheap; the result is cached per route by
:class:`~driftloop.serving.records.RecordMaker`.
"""

from __future__ import annotations

from typing import Any

from driftloop.contract import Layout

__all__ = ["ENVELOPES", "infer_layout", "is_oip_request", "layouts_from_openapi"]

ENVELOPES = ("inputs", "instances", "dataframe_records", "dataframe_split")
"""Keys that hold the rows in the common serving protocols (KServe v1, TF Serving, MLflow)."""

_SCALARS = (str, int, float, bool, type(None))


def is_oip_request(document: Any) -> bool:
    """Whether ``document`` is an Open Inference Protocol v2 inference request."""
    if not isinstance(document, dict):
        return False
    inputs = document.get("inputs")
    return (
        isinstance(inputs, list)
        and bool(inputs)
        and all(
            isinstance(t, dict)
            and "name" in t
            and "data" in t
            and ("shape" in t or "datatype" in t)
            for t in inputs
        )
    )


def _is_split(value: Any) -> bool:
    """A pandas ``orient="split"`` object: ``{"columns": [...], "data": [[...]]}``."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("columns"), list)
        and isinstance(value.get("data"), list)
        and set(value) <= {"columns", "data", "index"}
    )


def _is_table(value: Any) -> bool:
    """A list of objects, a column-oriented object, a split object or a 2-D array."""
    if isinstance(value, list):
        return bool(value) and (
            all(isinstance(row, dict) for row in value)
            or all(isinstance(row, list) for row in value)
        )
    if isinstance(value, dict):
        if _is_split(value):
            return True
        lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
        return bool(value) and len(lengths) == 1 and -1 not in lengths
    return False


def _flat(value: Any) -> bool:
    return isinstance(value, _SCALARS) or (
        isinstance(value, list) and all(isinstance(v, _SCALARS) for v in value)
    )


def infer_layout(document: Any) -> Layout | None:
    """The layout of one parsed request body, or None when it holds no rows we can see."""
    if isinstance(document, dict):
        if is_oip_request(document):
            return Layout(input_path="inputs", protocol="oip_v2", inferred="oip_v2")
        for key in ENVELOPES:
            value = document.get(key)
            if _is_table(value) or (key == "inputs" and isinstance(value, dict) and value):
                return Layout(input_path=key, inferred="inputs")
        tables = [k for k, v in document.items() if _is_table(v)]
        if len(tables) == 1:
            return Layout(input_path=tables[0], inferred="argument")
        if document and all(_flat(v) for v in document.values()):
            return Layout(input_path="", inferred="object")
        return None
    if isinstance(document, list) and _is_table(document):
        return Layout(input_path="", inferred="records")
    return None


def _resolve(schema: Any, components: dict[str, Any]) -> Any:
    for _ in range(8):
        if not (isinstance(schema, dict) and isinstance(schema.get("$ref"), str)):
            return schema
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    return schema


def _tabular(schema: Any, components: dict[str, Any]) -> bool:
    """Whether an argument's schema is a table: an array, or an object without fixed fields
    (a column-oriented DataFrame)."""
    schema = _resolve(schema, components)
    if not isinstance(schema, dict):
        return False
    for option in schema.get("anyOf") or schema.get("oneOf") or []:
        if _tabular(option, components):
            return True
    kind = schema.get("type")
    return kind == "array" or (kind == "object" and not schema.get("properties"))


def layouts_from_openapi(document: Any) -> dict[str, Layout]:
    """Per route (path), the layout an OpenAPI document implies for its JSON ``POST`` body.

    A body with exactly one property that is a table reads rows from it; a body of several
    properties, or one scalar property, is one row. Routes without a JSON body are left out.
    """
    if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
        return {}
    components = (document.get("components") or {}).get("schemas") or {}
    out: dict[str, Layout] = {}
    for path, operations in document["paths"].items():
        post = operations.get("post") if isinstance(operations, dict) else None
        if not isinstance(post, dict):
            continue
        content = (post.get("requestBody") or {}).get("content") or {}
        body = (content.get("application/json") or {}).get("schema")
        body = _resolve(body, components)
        if not isinstance(body, dict):
            continue
        properties = body.get("properties")
        if body.get("type") == "array":
            out[path] = Layout(input_path="", inferred="openapi")
        elif isinstance(properties, dict) and properties:
            tables = [k for k, v in properties.items() if _tabular(v, components)]
            if len(properties) == 1 and tables:
                out[path] = Layout(input_path=tables[0], inferred="openapi")
            elif not tables:
                out[path] = Layout(input_path="", inferred="openapi")
    return out
