"""An Evidently data-drift report of the same data Driftloop compared, as one HTML page.

Evidently is imported inside the function: it is heavy and only reports need it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import pandas as pd

from driftloop.contract import FeatureKind
from driftloop.extras import needs_extra
from driftloop.monitor.drift.frame import FeatureSpec

__all__ = ["evidently_html"]


def evidently_html(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    specs: Sequence[FeatureSpec],
    *,
    drifted_share: float = 0.5,
) -> str:
    """Render Evidently's ``DataDriftPreset`` of ``current`` against ``reference`` as HTML."""
    with warnings.catch_warnings():
        # Evidently's import pulls in litestar, which warns about its own deprecations.
        warnings.simplefilter("ignore")
        with needs_extra("reports", "the Evidently HTML report"):
            from evidently import DataDefinition, Dataset, Report
            from evidently.presets import DataDriftPreset

    names = [s.name for s in specs if s.name in reference.columns and s.name in current.columns]
    if not names:
        raise ValueError("no feature is present in both the reference and the current data")
    definition = DataDefinition(
        numerical_columns=[
            s.name for s in specs if s.name in names and s.kind is FeatureKind.numerical
        ],
        categorical_columns=[
            s.name for s in specs if s.name in names and s.kind is FeatureKind.categorical
        ],
    )
    report = Report([DataDriftPreset(columns=names, drift_share=drifted_share)])
    snapshot = report.run(
        Dataset.from_pandas(current[names], data_definition=definition),
        Dataset.from_pandas(reference[names], data_definition=definition),
    )
    html: str = snapshot.get_html_str(as_iframe=False)
    return html
