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


HEADINGS = {
    "p_value": "p",
    "p_adjusted": "p (BH-adjusted)",
    "effect_size": "effect size",
    "ood_records_ratio": "out-of-distribution share",
    "url": "URL",
    "id": "ID",
    "n": "rows",
}
"""Column names that read better spelled differently than their JSON key."""


def heading(key: str) -> str:
    """A readable column heading: ``effect_size`` -> ``Effect size``."""
    text = HEADINGS.get(key, key.replace("_", " "))
    return text[:1].upper() + text[1:]


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> Markup:
    """An HTML table of ``rows`` (dicts), with ``columns`` or the union of their keys."""
    if not rows:
        return Markup('<p class="muted">none yet</p>')
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{escape(heading(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(row.get(c))}</td>" for c in columns) + "</tr>" for row in rows
    )
    return Markup(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def cell(value: Any) -> Markup:
    """One table cell: scalars formatted, flags highlighted, nested values rendered."""
    if isinstance(value, Markup):
        return value
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


def summary(value: Any, limit: int = 4) -> str:
    """A one-line gist of a JSON object: its first few scalar entries."""
    if not isinstance(value, dict):
        return fmt(value)
    items = [(k, v) for k, v in value.items() if not isinstance(v, dict | list)][:limit]
    return ", ".join(f"{heading(k).lower()} {fmt(v)}" for k, v in items) or f"{len(value)} entries"


def folded(value: Any, label: str = "") -> Markup:
    """A short summary with the full JSON folded underneath (open on click)."""
    import json

    if value in (None, {}, []):
        return Markup('<span class="muted">–</span>')
    text = json.dumps(value, indent=2, sort_keys=True, default=str)
    gist = escape(label or summary(value))
    return Markup(f"<details><summary>{gist}</summary><pre>{escape(text)}</pre></details>")
