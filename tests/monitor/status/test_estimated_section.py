"""The status page's "Estimated vs realized performance" section: estimates with intervals before
labels, the realized values and the estimation error once labels arrive, and a plain "not
estimable: <reason>" when the model cannot be estimated."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from driftloop.server import create_app
from driftloop.settings import EstimationSettings, Settings
from tests.monitor.estimation.test_component import label, register, send, upload
from tests.scored import calibrated_classifier

TITLE = "Estimated vs realized performance"


@pytest.fixture
def client(sqlite_database_url: str) -> Iterator[TestClient]:
    settings = Settings(
        database_url=sqlite_database_url, estimation=EstimationSettings(ttl_seconds=0)
    )
    app = create_app(settings)
    with TestClient(app) as test_client:
        yield test_client
    app.state.driftloop.engine.dispose()


def section_html(client: TestClient, name: str) -> str:
    """The HTML between the section's heading and the next one."""
    page = client.get(f"/models/{name}")
    assert page.status_code == 200, page.text
    assert TITLE in page.text
    after = page.text.split(f"<h3>{TITLE}</h3>", 1)[1]
    return after.split("<h3>", 1)[0]


def cells(html: str, metric: str) -> list[str]:
    """The cells of the table row of ``metric``."""
    (found,) = re.findall(rf"<tr><td>{metric}</td>(.*?)</tr>", html)
    return [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td>(.*?)</td>", found)]


def number(text: str) -> float:
    return float(text.split(" ")[0])


def test_estimates_stand_beside_the_realized_values_once_labels_arrive(
    client: TestClient,
) -> None:
    register(client, "clf", {"kind": "classification", "classes": ["a", "b"]})
    upload(client, "clf", calibrated_classifier(600, 0), score_columns="p_a,p_b")
    window = calibrated_classifier(160, 1)
    ids = send(client, "clf", window)

    html = section_html(client, "clf")
    assert "v1 · champion · last 1h" in html
    assert "160 rows" in html
    assert "no labels yet" in html
    estimate, reference, on_labeled, realized, error, covered = cells(html, "accuracy")
    view = client.get("/v1/models/clf").json()["performance"]["estimated"]
    accuracy = view["groups"][0]["metrics"]["accuracy"]
    assert number(estimate) == pytest.approx(accuracy["estimate"], abs=1e-3)
    low, high = re.findall(r"\[(.*), (.*)\]", estimate)[0]
    assert float(low) == pytest.approx(accuracy["lower"], abs=1e-3)
    assert float(high) == pytest.approx(accuracy["upper"], abs=1e-3)
    assert number(reference) > 0.5
    assert (on_labeled, realized, error, covered) == ("–", "–", "–", "–")
    assert {"Estimated", "Realized", "Estimation error"} <= set(
        re.findall(r"<th>([^<]*)</th>", html)
    )

    label(client, ids[:80], window["label"].iloc[:80].tolist())
    html = section_html(client, "clf")
    assert "80 of the rows have labels" in html
    _, _, on_labeled, realized, error, covered = cells(html, "accuracy")
    truth = float((window["prediction"] == window["label"]).iloc[:80].mean())
    assert number(realized) == pytest.approx(truth, abs=1e-3)
    assert number(error) == pytest.approx(number(on_labeled) - truth, abs=2e-3)
    assert covered in ("yes", "no")


def test_a_model_that_cannot_be_estimated_says_why(client: TestClient) -> None:
    register(client, "bare", {"kind": "classification", "classes": ["a", "b"]})
    upload(client, "bare", calibrated_classifier(300, 2).drop(columns=["p_a", "p_b"]))
    send(client, "bare", calibrated_classifier(50, 3), scores=False)
    html = section_html(client, "bare")
    assert "not estimable" in html
    assert "no class scores" in html
    assert "<table>" not in html

    # A reference with too few labels to calibrate.
    register(client, "few", {"kind": "classification", "classes": ["a", "b"]})
    upload(client, "few", calibrated_classifier(40, 4), score_columns="p_a,p_b")
    html = section_html(client, "few")
    assert "not estimable" in html
    assert "too few reference labels" in html
