"""A tiny iris Bento the integration test puts behind the sidecar (no model file needed)."""

from __future__ import annotations

import bentoml


@bentoml.service(workers=1)
class Iris:
    """Classifies iris flowers by petal length, like a very small decision tree."""

    @bentoml.api
    def predict(self, inputs: list[dict[str, float | str]]) -> list[str]:
        """One class name per input row."""
        out = []
        for row in inputs:
            petal = float(row.get("petal_length", 0.0))
            out.append("setosa" if petal < 2.5 else "versicolor" if petal < 4.9 else "virginica")
        return out
