"""Wrap a fitted scikit-learn-compatible model as a Bento (``driftloop bento build``)."""

from driftloop.serving.bento.build import BentoBuild, build_bento, read_reference
from driftloop.serving.bento.template import FeatureSpec, render_service

__all__ = ["BentoBuild", "FeatureSpec", "build_bento", "read_reference", "render_service"]
