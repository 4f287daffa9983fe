"""Turn the JSON views of a model into HTML: known sections get purpose-made tables, anything
else a generic rendering, so a new component's section shows up without touching the page."""

from __future__ import annotations

import math
from typing import Any

from markupsafe import Markup, escape


def fmt(value: Any) -> str:
    """A short human form of a scalar."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.3g}"
        return f"{value:.4g}"
    return str(value)


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> Markup:
    """An HTML table of ``rows`` (dicts), with ``columns`` or the union of their keys."""
    if not rows:
        return Markup('<p class="muted">none yet</p>')
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(row.get(c))}</td>" for c in columns) + "</tr>" for row in rows
    )
    return Markup(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def cell(value: Any) -> Markup:
    """One table cell: scalars formatted, flags highlighted, nested values rendered."""
    if isinstance(value, bool):
        css = "bad" if value else "ok"
        return Markup(f'<span class="{css}">{fmt(value)}</span>')
    if isinstance(value, dict | list):
        return generic(value)
    return Markup(escape(fmt(value)))


def generic(value: Any, depth: int = 0) -> Markup:
    """Any JSON value as nested definition lists and tables."""
    if isinstance(value, dict):
        if not value:
            return Markup('<span class="muted">–</span>')
        items = "".join(
            f"<dt>{escape(k)}</dt><dd>{generic(v, depth + 1)}</dd>" for k, v in value.items()
        )
        return Markup(f'<dl class="kv">{items}</dl>')
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            return table(value[:50])
        return Markup(escape(", ".join(fmt(v) for v in value[:50])) or "–")
    return Markup(escape(fmt(value)))
