"""First contact (issue 23): a real BentoML 1.4 service that nobody described to Driftloop, with a
DataFrame route and a typed-argument route, behind the sidecar and with the middleware. No model
is registered first: every row must be recorded under its feature names, the model's schema must
show what was inferred, and a request nobody can parse is answered normally and counted."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.procs import MonitorProcess
from tests.serving.procs import BentoProcess, SidecarProcess, scraped_metric, wait_for_records
from tests.serving.test_integration import stored

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHAPES = Path(__file__).parent / "shapes"
WINES = [
    {"alcohol": 13.2, "malic_acid": 1.78},
    {"alcohol": 12.1, "malic_acid": 2.5},
    {"alcohol": 14.0, "malic_acid": 1.1},
]


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BentoProcess]:
    """The service as its author wrote it, served by ``bentoml serve``."""
    work = tmp_path_factory.mktemp("wine")
    env = {"BENTOML_HOME": str(work / "home"), "BENTOML_DO_NOT_TRACK": "True"}
    bento = BentoProcess("wine", "service:Wine", work, env, str(SHAPES))
    try:
        yield bento.wait()
    finally:
        bento.stop()


def send_traffic(url: str) -> list[dict[str, Any]]:
    """Two DataFrame batches (records and columns), three typed calls, and two requests that
    carry no rows we can read. Returns the rows the service answered for."""
    answered: list[dict[str, Any]] = []
    with httpx.Client(timeout=30) as client:
        batch = client.post(f"{url}/score", json={"df": WINES}, headers={"X-Request-ID": "b-1"})
        assert batch.status_code == 200, batch.text
        answered += WINES
        columns = {k: [w[k] for w in WINES[:2]] for k in WINES[0]}
        frame = client.post(f"{url}/score", json={"df": columns}, headers={"X-Request-ID": "b-2"})
        assert frame.status_code == 200, frame.text
        answered += WINES[:2]
        for i, wine in enumerate(WINES):
            one = client.post(
                f"{url}/classify",
                json={**wine, "colour": "white"},
                headers={"X-Request-ID": f"t-{i}"},
            )
            assert one.status_code == 200, one.text
            assert one.json()["prediction"] in ("good", "plain")
            answered.append({**wine, "colour": "white"})
        broken = client.post(
            f"{url}/classify", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert broken.status_code == 400  # the service's own answer, passed on unchanged
        rowless = client.post(f"{url}/classify", json=[])
        assert rowless.status_code == 400
    return answered


def expected_inputs(answered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(answered, key=lambda r: sorted(r.items()))


def wait_metric(read: Any, name: str, expected: float, timeout: float = 20, **labels: str) -> float:
    deadline = time.monotonic() + timeout
    value = read(name, **labels)
    while value < expected and time.monotonic() < deadline:
        time.sleep(0.1)
        value = read(name, **labels)
    return float(value)


def test_a_bento_behind_the_sidecar_is_recorded_row_by_row_with_nothing_registered(
    wine: BentoProcess, monitor: MonitorProcess, tmp_path: Path
) -> None:
    model = "wine-sidecar"
    args = ["--model", model, "--champion", wine.url, "--champion-version", "v1",
            "--monitor", monitor.url, "--spool-dir", str(tmp_path / "spool")]  # fmt: skip
    with SidecarProcess("sidecar-wine", args, tmp_path) as sidecar:
        answered = send_traffic(sidecar.url)
        counts = wait_for_records(monitor.url, model, len(answered))
        not_json = wait_metric(sidecar.metric, "driftloop_records_dropped_total", 1,
                               reason="not_json")  # fmt: skip
        no_rows = wait_metric(sidecar.metric, "driftloop_records_dropped_total", 1,
                              reason="no_rows")  # fmt: skip
        recorded = sidecar.metric("driftloop_capture_requests_total", result="recorded")
        dropped = sidecar.metric("driftloop_capture_requests_total", result="dropped")
        health = httpx.get(f"{sidecar.admin}/healthz").json()
    assert counts["record_count"] == len(answered)
    records = stored(monitor, model)
    assert expected_inputs([r[3] for r in records]) == expected_inputs(answered)
    by_id = {r[0]: r for r in records}
    assert by_id["b-1-0"][4] == {"prediction": 6.778}
    assert set(by_id["t-0"][4]) == {"prediction", "probabilities"}
    assert (not_json, no_rows, recorded, dropped) == (1, 1, 5, 2)
    assert health["layouts"] == {
        "/classify": "rows the body itself [openapi]",
        "/score": "rows under 'df' [openapi]",
    }
    described = httpx.get(f"{monitor.url}/v1/models/{model}").json()
    schema = described["schema"]
    assert {f["name"] for f in schema["features"]} == {"alcohol", "malic_acid", "colour"}
    assert {p: (lay["input_path"], lay["inferred"]) for p, lay in schema["routes"].items()} == {
        "/score": ("df", "openapi"),
        "/classify": ("", "openapi"),
    }


def test_the_same_bento_with_the_middleware_is_recorded_row_by_row(
    monitor: MonitorProcess, tmp_path: Path
) -> None:
    model = "wine-middleware"
    env = {
        "BENTOML_HOME": str(tmp_path / "home"),
        "BENTOML_DO_NOT_TRACK": "True",
        "SHAPES_MONITOR_URL": monitor.url,
        "SHAPES_MODEL": model,
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    bento = BentoProcess("wine-mw", "service:Wine", tmp_path, env, str(SHAPES))
    try:
        bento.wait()
        answered = send_traffic(bento.url)
        counts = wait_for_records(monitor.url, model, len(answered))
        read = lambda name, **labels: scraped_metric(bento.url, name, model=model, **labels)  # noqa: E731
        not_json = wait_metric(read, "driftloop_records_dropped_total", 1, reason="not_json")
        no_rows = wait_metric(read, "driftloop_records_dropped_total", 1, reason="no_rows")
    finally:
        bento.stop()
    assert counts["record_count"] == len(answered)
    records = stored(monitor, model)
    assert expected_inputs([r[3] for r in records]) == expected_inputs(answered)
    assert (not_json, no_rows) == (1, 1)
    assert os.environ.get("SHAPES_MONITOR_URL") is None  # configured by the service, not us
    routes = httpx.get(f"{monitor.url}/v1/models/{model}").json()["schema"]["routes"]
    assert {p: lay["input_path"] for p, lay in routes.items()} == {"/score": "df", "/classify": ""}


def oip_stand_in() -> Any:
    """A STAND-IN for an Open Inference Protocol v2 server (KServe, Triton, MLServer cannot run
    here): ``POST /v2/models/{name}/infer`` answering ``{model_name, id, outputs}`` with one
    label per row along the first dimension, as the protocol specifies."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def infer(request: Request) -> JSONResponse:
        body = await request.json()
        tensor = body["inputs"][0]
        rows = tensor["shape"][0]
        data = [v for row in tensor["data"] for v in row] if rows else []  # row-major, nested
        width = len(data) // rows
        labels = [int(sum(data[i * width : (i + 1) * width]) > 10) for i in range(rows)]
        answer: dict[str, Any] = {
            "model_name": request.path_params["name"],
            "outputs": [{"name": "label", "shape": [rows], "datatype": "INT64", "data": labels}],
        }
        if "id" in body:
            answer["id"] = body["id"]
        return JSONResponse(answer)

    return Starlette(routes=[Route("/v2/models/{name}/infer", infer, methods=["POST"])])


def test_oip_v2_tensors_behind_the_sidecar_become_one_record_per_row(
    monitor: MonitorProcess, tmp_path: Path
) -> None:
    from tests.serving.servers import ServerThread

    model = "oip-tensors"
    request = {
        "id": "caller-7",
        "inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP32",
                    "data": [[1, 2, 3, 4], [0, 0, 1, 1], [5, 5, 5, 5]]}],
    }  # fmt: skip
    with ServerThread(oip_stand_in()) as server:
        args = ["--model", model, "--champion", server.url, "--monitor", monitor.url,
                "--spool-dir", str(tmp_path / "spool")]  # fmt: skip
        with SidecarProcess("sidecar-oip", args, tmp_path) as sidecar:
            answer = httpx.post(f"{sidecar.url}/v2/models/{model}/infer", json=request)
            assert answer.status_code == 200
            assert answer.json()["outputs"][0]["data"] == [0, 0, 1]
            counts = wait_for_records(monitor.url, model, 3)
    assert counts["record_count"] == 3
    records = sorted(stored(monitor, model))
    assert [(r[0], r[3], r[4]) for r in records] == [
        ("caller-7-0", {"x_0": 1, "x_1": 2, "x_2": 3, "x_3": 4}, {"prediction": 0}),
        ("caller-7-1", {"x_0": 0, "x_1": 0, "x_2": 1, "x_3": 1}, {"prediction": 0}),
        ("caller-7-2", {"x_0": 5, "x_1": 5, "x_2": 5, "x_3": 5}, {"prediction": 1}),
    ]
