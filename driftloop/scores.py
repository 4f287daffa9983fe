"""Class scores as frame columns: ``score:<class>``, one float column per class.

The label join's rows (``driftloop.feedback.join``) and the stored reference datasets (uploaded
with ``score_columns``) name them so; the metrics, the performance estimation and the snapshots
read them with :func:`score_matrix` or skip them with :func:`is_score_column`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SCORE_PREFIX", "is_score_column", "score_column", "score_matrix"]

SCORE_PREFIX: Final = "score:"


def score_column(cls: object) -> str:
    """The column of class ``cls``'s score."""
    return f"{SCORE_PREFIX}{cls}"


def is_score_column(name: object) -> bool:
    """Whether ``name`` is a class's score column."""
    return str(name).startswith(SCORE_PREFIX)


def score_matrix(frame: pd.DataFrame, classes: Sequence[object]) -> np.ndarray[Any, Any] | None:
    """The scores of ``classes`` as a float matrix in that order (NaN where a row has no full
    set, a whole column of NaN for a class the rows never scored); None when the frame has no
    score columns at all."""
    if not any(is_score_column(c) for c in frame.columns):
        return None
    matrix = np.full((len(frame), len(classes)), np.nan)
    for i, cls in enumerate(classes):
        name = score_column(cls)
        if name in frame.columns:
            matrix[:, i] = frame[name].to_numpy(np.float64)
    return matrix
