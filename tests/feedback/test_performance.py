"""Live performance on joined rows: equal to scikit-learn on the true labels, whatever arrived
first; segments and their gap; the periodic job feeding the collector and the model page."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn import metrics as sk

from driftloop.clock import FrozenClock
from driftloop.feedback import performance
from driftloop.server import create_app
from driftloop.settings import Settings
from driftloop.store.registry import get_model
from tests.feedback.support import (
    CLASSES,
    later,
    record,
    register,
    sample,
    send_labels,
    send_records,
)


def live(client: TestClient, name: str = "pets", **window: Any) -> dict[str, Any]:
    state = client.app.state.driftloop  # type: ignore[attr-defined]
    with state.sessions() as session:
        return performance(session, get_model(session, name), **window)


def test_metrics_equal_scikit_learn_on_the_true_labels_whatever_arrived_first(
    client: TestClient,
) -> None:
    register(client)
    rng = np.random.default_rng(5)
    n = 80
    truth = {f"r{i}": CLASSES[int(rng.integers(0, 3))] for i in range(n)}
    predicted = {
        rid: label if rng.random() < 0.6 else CLASSES[int(rng.integers(0, 3))]
        for rid, label in truth.items()
    }
    probabilities = {rid: rng.dirichlet([1, 1, 1]).tolist() for rid in truth}
    ids = list(truth)
    # Labels for the first 30 come before their records, some wrong at first and then corrected.
    wrong = {rid: CLASSES[(CLASSES.index(truth[rid]) + 1) % 3] for rid in ids[:10]}
    send_labels(
        client, [{"request_id": rid, "label": wrong.get(rid, truth[rid])} for rid in ids[:30]]
    )
    send_records(
        client,
        [
            record(
                rid, predicted[rid], at=later(i), scores=probabilities[rid]
            )  # list aligned with classes
            for i, rid in enumerate(ids)
        ]
        + [
            record(rid, "cat", variant="shadow", version="v2", at=later(i))
            for i, rid in enumerate(ids[:20])
        ],
    )
    send_labels(
        client, [{"request_id": rid, "label": truth[rid]} for rid in ids[:10]]
    )  # corrections
    send_labels(
        client, [{"request_id": rid, "label": truth[rid], "model": "pets"} for rid in ids[30:70]]
    )
    send_labels(
        client, [{"request_id": rid, "label": truth[rid]} for rid in ids[60:70]]
    )  # duplicates
    result = live(client)
    champion = result["versions"]["v1"]["champion"]
    labeled = ids[:70]
    y_true = np.array([truth[r] for r in labeled])
    y_pred = np.array([predicted[r] for r in labeled])
    proba = np.array(
        [probabilities[r] for r in labeled]
    )  # columns in CLASSES order, sorted already
    metrics = champion["metrics"]
    assert champion["n"] == 70
    assert champion["predictions"] == n
    assert champion["label_coverage"]["value"] == pytest.approx(70 / n)
    assert metrics["accuracy"]["value"] == pytest.approx(sk.accuracy_score(y_true, y_pred))
    assert metrics["f1_macro"]["value"] == pytest.approx(
        sk.f1_score(y_true, y_pred, average="macro")
    )
    assert metrics["recall_macro"]["value"] == pytest.approx(
        sk.recall_score(y_true, y_pred, average="macro")
    )
    assert metrics["log_loss"]["value"] == pytest.approx(sk.log_loss(y_true, proba, labels=CLASSES))
    assert metrics["roc_auc"]["value"] == pytest.approx(
        sk.roc_auc_score(y_true, proba, multi_class="ovr", labels=CLASSES)
    )
    per_class = sk.precision_score(y_true, y_pred, average=None, labels=CLASSES)
    assert [champion["per_class"][c]["precision"]["value"] for c in CLASSES] == pytest.approx(
        list(per_class)
    )
    # 70 rows over three classes: fewer than MIN_AUC_CLASS_ROWS (25) positives per class, so the
    # AUC is reported without an interval (one would not cover; issue 17).
    assert (metrics["roc_auc"]["lower"], metrics["roc_auc"]["upper"]) == (None, None)
    for name, metric in metrics.items():
        if name != "roc_auc":
            assert metric["lower"] <= metric["value"] <= metric["upper"]
    shadow = result["versions"]["v2"]["shadow"]
    shadow_truth = np.array([truth[r] for r in ids[:20]])
    assert shadow["n"] == 20
    assert shadow["metrics"]["accuracy"]["value"] == pytest.approx(np.mean(shadow_truth == "cat"))
    assert "roc_auc" not in shadow["metrics"], "the shadow logged no scores"
    window = live(client, since=later(10), until=later(20))["versions"]["v1"]["champion"]
    assert window["n"] == 10
    assert window["predictions"] == 10


def test_regression_metrics_and_segments_with_their_gap(client: TestClient) -> None:
    register(client, "price", kind="regression")
    rng = np.random.default_rng(11)
    values = rng.normal(100, 10, size=90)
    colors = ["red", "blue", "green"]
    errors = {"red": 1.0, "blue": 5.0, "green": 9.0}
    records, labels, y_true, y_pred = [], [], [], []
    for i, value in enumerate(values):
        color = colors[i % 3]
        guess = float(value + rng.normal(0, errors[color]))
        records.append(record(f"p{i}", guess, model="price", color=color, size=float(i)))
        labels.append({"request_id": f"p{i}", "label": float(value)})
        y_true.append(value)
        y_pred.append(guess)
    send_records(client, records)
    send_labels(client, labels)
    group = live(client, "price")["versions"]["v1"]["champion"]
    assert group["metrics"]["mae"]["value"] == pytest.approx(sk.mean_absolute_error(y_true, y_pred))
    assert group["metrics"]["rmse"]["value"] == pytest.approx(
        sk.root_mean_squared_error(y_true, y_pred)
    )
    assert group["metrics"]["r2"]["value"] == pytest.approx(sk.r2_score(y_true, y_pred))
    view = group["segments"]["color"]
    assert view["metric"] == "mae"
    per_color = {
        c: float(
            np.mean(
                [
                    abs(t - p)
                    for k, (t, p) in enumerate(zip(y_true, y_pred, strict=True))
                    if k % 3 == i
                ]
            )
        )
        for i, c in enumerate(colors)
    }
    assert {k: v["value"] for k, v in view["segments"].items()} == pytest.approx(per_color)
    assert view["gap"]["best"] == min(per_color, key=per_color.__getitem__)
    assert view["gap"]["worst"] == max(per_color, key=per_color.__getitem__)
    assert view["gap"]["value"] == pytest.approx(max(per_color.values()) - min(per_color.values()))
    # The gap has an interval (Welch on the two mean errors, Bonferroni over the pairs).
    assert view["gap"]["method"] == "welch-bonferroni"
    assert view["gap"]["lower"] <= view["gap"]["value"] <= view["gap"]["upper"]


def test_the_periodic_job_feeds_the_collector_and_the_model_page(settings: Settings) -> None:
    clock = FrozenClock(later(3600 * 5))
    app = create_app(settings, clock=clock)
    with TestClient(app) as client:
        register(client)
        send_records(client, [record(f"r{i}", "cat", at=later(i * 60)) for i in range(40)])
        send_labels(
            client,
            [
                {
                    "request_id": f"r{i}",
                    "label": "cat" if i % 4 else "dog",
                    "timestamp": later(i * 60 + 30).isoformat(),
                }
                for i in range(30)
            ],
        )
        assert (
            sample(client, "driftloop_performance_value", {"model": "pets", "metric": "accuracy"})
            is None
        )
        state = client.app.state.driftloop  # type: ignore[attr-defined]
        state.jobs.run_once(state)
        labels = {"model": "pets", "version": "v1", "variant": "champion", "window": "1d"}
        detail = client.get("/v1/models/pets").json()
        group = detail["performance"]["windows"]["1d"]["versions"]["v1"]["champion"]
        accuracy = sample(
            client, "driftloop_performance_value", {**labels, "metric": "accuracy", "class": ""}
        )
        assert accuracy == pytest.approx(22 / 30) == group["metrics"]["accuracy"]["value"]
        lower = sample(
            client, "driftloop_performance_lower", {**labels, "metric": "accuracy", "class": ""}
        )
        assert lower == group["metrics"]["accuracy"]["lower"]
        assert (
            sample(
                client,
                "driftloop_performance_samples",
                {**labels, "metric": "accuracy", "class": ""},
            )
            == 30
        )
        assert (
            sample(
                client,
                "driftloop_performance_value",
                {**labels, "metric": "recall", "class": "dog"},
            )
            == 0.0
        )
        assert sample(client, "driftloop_label_coverage_ratio", labels) == pytest.approx(30 / 40)
        assert (
            sample(client, "driftloop_label_latency_seconds_bucket", {**labels, "le": "60.0"}) == 30
        )
        assert sample(client, "driftloop_label_latency_seconds_count", labels) == 30
        assert sample(client, "driftloop_label_latency_seconds_sum", labels) == 30 * 30
        assert sample(
            client,
            "driftloop_performance_segment_value",
            {**labels, "metric": "accuracy", "feature": "color", "segment": "red"},
        ) == pytest.approx(22 / 30)
        assert (
            sample(client, "driftloop_performance_computed_timestamp_seconds", {"model": "pets"})
            == clock.now().timestamp()
        )
        # The 1h window holds the records of the last hour only: none of these.
        assert detail["performance"]["windows"]["1h"]["versions"] == {}
        assert detail["labels"]["joined"] == 30
        text = client.get("/metrics").text
        assert 'driftloop_performance_value{class="",metric="f1_macro",model="pets"' in text
    app.state.driftloop.engine.dispose()


def test_the_performance_endpoint_computes_a_window_now(client: TestClient) -> None:
    register(client)
    send_records(client, [record(f"r{i}", "dog", at=later(i)) for i in range(10)])
    send_labels(client, [{"request_id": f"r{i}", "label": "dog"} for i in range(10)])
    response = client.get("/v1/models/pets/performance", params={"since": later(5).isoformat()})
    assert response.status_code == 200, response.text
    group = response.json()["versions"]["v1"]["champion"]
    assert group["n"] == 5
    assert group["metrics"]["accuracy"] == {
        **group["metrics"]["accuracy"],
        "value": 1.0,
        "upper": 1.0,
    }
    assert client.get("/v1/models/nope/performance").status_code == 404
