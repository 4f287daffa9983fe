"""Drift math: pure functions over NumPy arrays, one method per module, an explicit table.

``METHODS`` names every method; :func:`decide` applies Benjamini–Hochberg and the
significance-and-materiality rule; :class:`Reference` holds reference statistics computed once;
:func:`compare_frame` is the raw path over data frames.
"""

from typing import TYPE_CHECKING

from driftloop._lazy import lazy_exports

if TYPE_CHECKING:
    from driftloop.monitor.drift.chi2 import chi2_counts
    from driftloop.monitor.drift.correction import benjamini_hochberg
    from driftloop.monitor.drift.decision import (
        DriftConfig,
        DriftReport,
        FeatureDrift,
        FeatureTest,
        decide,
    )
    from driftloop.monitor.drift.frame import (
        FeatureSpec,
        Reference,
        compare_frame,
        infer_specs,
        numeric_column,
        specs_from_schema,
    )
    from driftloop.monitor.drift.jensen_shannon import js_distance
    from driftloop.monitor.drift.ks import ks_binned, ks_pvalue, ks_statistic
    from driftloop.monitor.drift.methods import (
        DEFAULT_METHODS,
        METHODS,
        DriftMethod,
        Measures,
        categorical_measures,
        numerical_binned_measures,
        numerical_measures,
        resolve_method,
    )
    from driftloop.monitor.drift.psi import psi_counts
    from driftloop.monitor.drift.reference import (
        PROFILE_BINS,
        CategoricalReference,
        NumericalReference,
        bin_index,
        categorical_reference,
        category_key,
        numerical_reference,
    )
    from driftloop.monitor.drift.wasserstein import wasserstein_binned, wasserstein_sorted

__all__ = [
    "DEFAULT_METHODS",
    "METHODS",
    "PROFILE_BINS",
    "CategoricalReference",
    "DriftConfig",
    "DriftMethod",
    "DriftReport",
    "FeatureDrift",
    "FeatureSpec",
    "FeatureTest",
    "Measures",
    "NumericalReference",
    "Reference",
    "benjamini_hochberg",
    "bin_index",
    "categorical_measures",
    "categorical_reference",
    "category_key",
    "chi2_counts",
    "compare_frame",
    "decide",
    "infer_specs",
    "js_distance",
    "ks_binned",
    "ks_pvalue",
    "ks_statistic",
    "numeric_column",
    "numerical_binned_measures",
    "numerical_measures",
    "numerical_reference",
    "psi_counts",
    "resolve_method",
    "specs_from_schema",
    "wasserstein_binned",
    "wasserstein_sorted",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "driftloop.monitor.drift.chi2": ("chi2_counts",),
        "driftloop.monitor.drift.correction": ("benjamini_hochberg",),
        "driftloop.monitor.drift.decision": (
            "DriftConfig",
            "DriftReport",
            "FeatureDrift",
            "FeatureTest",
            "decide",
        ),
        "driftloop.monitor.drift.frame": (
            "FeatureSpec",
            "Reference",
            "compare_frame",
            "infer_specs",
            "numeric_column",
            "specs_from_schema",
        ),
        "driftloop.monitor.drift.jensen_shannon": ("js_distance",),
        "driftloop.monitor.drift.ks": ("ks_binned", "ks_pvalue", "ks_statistic"),
        "driftloop.monitor.drift.methods": (
            "DEFAULT_METHODS",
            "METHODS",
            "DriftMethod",
            "Measures",
            "categorical_measures",
            "numerical_binned_measures",
            "numerical_measures",
            "resolve_method",
        ),
        "driftloop.monitor.drift.psi": ("psi_counts",),
        "driftloop.monitor.drift.reference": (
            "PROFILE_BINS",
            "CategoricalReference",
            "NumericalReference",
            "bin_index",
            "categorical_reference",
            "category_key",
            "numerical_reference",
        ),
        "driftloop.monitor.drift.wasserstein": ("wasserstein_binned", "wasserstein_sorted"),
    },
)
