"""Two iris classifiers of different accuracy behind one BentoML service, for the rollout e2e
test: ``IRIS_QUALITY=good`` is a logistic regression (about 97 % accurate on iris), ``bad`` a
one-split decision tree (about 67 %). Same API as ``driftloop bento build``: ``POST /predict`` with
``{"inputs": [{feature: value}]}`` answers ``[{"prediction": species}]``."""

from __future__ import annotations

import os

import bentoml


@bentoml.service(workers=1)
class IrisRollout:
    """An iris classifier whose quality is chosen by ``IRIS_QUALITY``."""

    def __init__(self) -> None:
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression
        from sklearn.tree import DecisionTreeClassifier

        data = load_iris(as_frame=True)
        x = data.data.set_axis(
            ["sepal_length", "sepal_width", "petal_length", "petal_width"], axis=1
        )
        y = data.target.map(dict(enumerate(data.target_names)))
        good = os.environ.get("IRIS_QUALITY", "good") == "good"
        model = LogisticRegression(max_iter=500) if good else DecisionTreeClassifier(max_depth=1)
        self.columns = list(x.columns)
        self.model = model.fit(x.to_numpy(), y)

    @bentoml.api
    def predict(self, inputs: list[dict[str, float]]) -> list[dict[str, str]]:
        """The species of every row."""
        if not inputs:
            return []
        table = [[row[c] for c in self.columns] for row in inputs]
        return [{"prediction": str(p)} for p in self.model.predict(table)]
