"""A BentoML 1.4 service as users write them, with no Driftloop in it: a DataFrame API and a
typed-argument API on one service (the shapes of issue 23). With ``SHAPES_MONITOR_URL`` set it
also carries ``DriftloopMiddleware``, configured here from the environment (the middleware itself
reads none)."""

from __future__ import annotations

import os

import bentoml
import pandas as pd


@bentoml.service(workers=1)
class Wine:
    """Scores wines: a batch route taking a DataFrame and a one-wine route taking arguments."""

    @bentoml.api
    def score(self, df: pd.DataFrame) -> list[float]:
        """One quality score per row."""
        return [
            round(float(a) * 0.5 + float(m) * 0.1, 3)
            for a, m in zip(df["alcohol"], df["malic_acid"], strict=True)
        ]

    @bentoml.api
    def classify(self, alcohol: float, malic_acid: float, colour: str = "red") -> dict[str, object]:
        """The class of one wine, with its probabilities."""
        good = alcohol > 12.5
        return {
            "prediction": "good" if good else "plain",
            "probabilities": [0.8, 0.2] if good else [0.3, 0.7],
        }


if os.environ.get("SHAPES_MONITOR_URL"):
    from driftloop.serving import DriftloopMiddleware

    Wine.add_asgi_middleware(
        DriftloopMiddleware,
        model=os.environ["SHAPES_MODEL"],
        version="v1",
        monitor_url=os.environ["SHAPES_MONITOR_URL"],
    )
