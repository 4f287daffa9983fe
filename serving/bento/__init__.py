"""Wrap a fitted scikit-learn-compatible model as a Bento (``driftloop bento build``)."""

from typing import TYPE_CHECKING

from driftloop._lazy import lazy_exports

if TYPE_CHECKING:
    from driftloop.serving.bento.build import BentoBuild, build_bento, read_reference
    from driftloop.serving.bento.template import FeatureSpec, render_service

__all__ = ["BentoBuild", "FeatureSpec", "build_bento", "read_reference", "render_service"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "driftloop.serving.bento.build": ("BentoBuild", "build_bento", "read_reference"),
        "driftloop.serving.bento.template": ("FeatureSpec", "render_service"),
    },
)
