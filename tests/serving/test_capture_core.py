"""The capture core through the real proxy: a request Driftloop cannot read is answered as usual
and counted under its reason, never raised; request ids follow one rule for every route."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.serving.servers import ServerThread, model_app
from tests.serving.test_proxy import Proxy, single
from tests.serving.test_shipper import wait_for


@pytest.fixture(scope="module")
def upstream() -> Iterator[ServerThread]:
    with ServerThread(model_app("champ")) as server:
        yield server


def requests_counted(proxy: Proxy, result: str) -> float:
    return proxy.value("driftloop_capture_requests_total", result=result)


def test_a_body_that_is_not_json_is_answered_counted_and_never_logged(
    upstream: ServerThread,
) -> None:
    with Proxy(single(upstream.url)) as proxy:
        form = b"alcohol=13.2&colour=red"  # what `curl -d` sends
        answer = httpx.post(
            f"{proxy.url}/echo/upload",
            content=form,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 418  # the upstream's own answer, untouched
        assert answer.json()["path"] == "/echo/upload"
        broken = httpx.post(
            f"{proxy.url}/echo/x", content=b"{'single': 'quotes'}",
            headers={"content-type": "application/json"},
        )  # fmt: skip
        assert broken.status_code == 418
        wait_for(lambda: proxy.value("driftloop_records_dropped_total", reason="not_json") == 2)
        assert requests_counted(proxy, "dropped") == 2
        assert proxy.records() == []


def test_json_without_rows_is_answered_and_counted_no_rows(upstream: ServerThread) -> None:
    with Proxy(single(upstream.url)) as proxy:
        for body in ([], {"config": {"deep": {"er": 1}}}):
            assert httpx.post(f"{proxy.url}/echo/cfg", json=body).status_code == 418
        wait_for(lambda: proxy.value("driftloop_records_dropped_total", reason="no_rows") == 2)
        assert httpx.post(f"{proxy.url}/predict", json={"inputs": [{"a": 1.0}]}).is_success
        wait_for(lambda: requests_counted(proxy, "recorded") == 1)
        assert requests_counted(proxy, "dropped") == 2


def test_an_oip_body_id_names_the_records_only_when_no_request_id_came(
    upstream: ServerThread,
) -> None:
    body = {"id": "caller-9", "inputs": [{"name": "x", "shape": [1], "datatype": "FP32",
                                          "data": [1.5]}]}  # fmt: skip
    with Proxy(single(upstream.url)) as proxy:
        minted = httpx.post(f"{proxy.url}/echo/v2/models/m/infer", json=body)
        given = httpx.post(
            f"{proxy.url}/echo/v2/models/m/infer", json=body, headers={"X-Request-ID": "mine-1"}
        )
        assert given.headers["x-request-id"] == "mine-1"
        assert len(minted.headers["x-request-id"]) == 32
        wait_for(lambda: len(proxy.records()) == 2)
        assert sorted(r["request_id"] for r in proxy.records()) == ["caller-9", "mine-1"]
        assert all(r["inputs"] == {"x": 1.5} for r in proxy.records())
