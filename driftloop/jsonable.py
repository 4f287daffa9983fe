"""One JSON-cleaning helper for everything the monitor stores or sends as JSON.

Statistics come out of NumPy and pandas as NumPy scalars, NaN and infinities, which neither the
JSON columns nor the webhook bodies accept. :func:`jsonable` turns them into plain JSON values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import numpy as np

__all__ = ["jsonable"]


def jsonable(value: Any) -> Any:
    """``value`` made JSON-safe, recursively.

    NumPy scalars become Python numbers and booleans, non-finite floats ``None``, datetimes and
    dates ISO 8601 text, mapping keys text, tuples lists; anything else that is not a JSON value
    becomes a float when it converts to one, else its text.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat() if value == value else None  # pandas' NaT is not equal to itself
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else None
