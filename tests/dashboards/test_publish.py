"""``driftloop dashboards publish`` against a loopback server that checks Grafana's HTTP API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from typer.testing import CliRunner

from driftloop.cli import app
from driftloop.dashboards import DASHBOARDS, PublishError, connect, generate, publish
from driftloop.dashboards.publish import folder_uid
from tests.dashboards.fake_grafana import TOKEN, FakeGrafana, running

UIDS = sorted(name.removesuffix(".json") for name in DASHBOARDS)


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    with running(FakeGrafana()) as fake:
        yield fake
    assert fake.unexpected == [], "publish called endpoints outside Grafana's documented API"


def _dashboards() -> list[dict[str, object]]:
    return [json.loads(text) for text in generate().values()]


@contextmanager
def _client(grafana: FakeGrafana, token: str = TOKEN) -> Iterator[httpx.Client]:
    with connect(grafana.url, token, timeout=10) as client:
        yield client


def test_publish_creates_the_folder_and_uploads_every_dashboard(grafana: FakeGrafana) -> None:
    with _client(grafana) as client:
        published = publish(client, _dashboards(), folder="Driftloop")

    calls = [(r.method, r.path) for r in grafana.requests]
    assert calls == [
        ("GET", "/api/search"),
        ("POST", "/api/folders"),
        *[("POST", "/api/dashboards/db")] * len(DASHBOARDS),
    ]
    assert grafana.requests[0].query == {"query": "Driftloop", "type": "dash-folder"}
    assert grafana.requests[1].body == {"title": "Driftloop", "uid": "driftloop"}
    for request in grafana.requests[2:]:
        assert request.body["folderUid"] == "driftloop"
        assert request.body["overwrite"] is True
        assert request.body["dashboard"]["id"] is None
    assert sorted(grafana.dashboards) == UIDS
    generated = {d["uid"]: d for d in _dashboards()}
    for uid, stored in grafana.dashboards.items():
        assert stored["dashboard"] == generated[uid]
        assert stored["folderUid"] == "driftloop"
    assert sorted(p.uid for p in published) == UIDS
    assert all(p.url.startswith("/d/") and p.version == 1 for p in published)


def test_publishing_again_reuses_the_folder_and_overwrites_by_uid(grafana: FakeGrafana) -> None:
    with _client(grafana) as client:
        publish(client, _dashboards())
    grafana.requests.clear()
    with _client(grafana) as client:
        again = publish(client, _dashboards())
    assert [(r.method, r.path) for r in grafana.requests][:2] == [
        ("GET", "/api/search"),
        ("POST", "/api/dashboards/db"),
    ]
    assert len(grafana.folders) == 1
    assert {p.version for p in again} == {2}


def test_an_existing_folder_is_found_by_title_whatever_its_uid(grafana: FakeGrafana) -> None:
    grafana.folders["k8Xq2"] = {"id": 7, "uid": "k8Xq2", "title": "ML models", "url": "/f/k8Xq2"}
    grafana.folders["other"] = {"id": 8, "uid": "other", "title": "ML models old", "url": "/f/o"}
    with _client(grafana) as client:
        publish(client, _dashboards(), folder="ML models")
    assert not [r for r in grafana.requests if r.path == "/api/folders"]
    assert {d["folderUid"] for d in grafana.dashboards.values()} == {"k8Xq2"}


def test_a_folder_created_meanwhile_is_used(grafana: FakeGrafana) -> None:
    # Search does not see it yet (another publisher just created it): creation answers 409.
    grafana.folders["driftloop"] = {"id": 1, "uid": "driftloop", "title": "Driftloop", "url": "/f"}
    grafana.hidden_folders.add("driftloop")
    with _client(grafana) as client:
        publish(client, _dashboards())
    assert ("GET", "/api/folders/driftloop") in [(r.method, r.path) for r in grafana.requests]
    assert {d["folderUid"] for d in grafana.dashboards.values()} == {"driftloop"}


def test_a_wrong_token_is_an_error_naming_the_folder(grafana: FakeGrafana) -> None:
    with (
        _client(grafana, token="wrong") as client,
        pytest.raises(PublishError, match="cannot find or create Grafana folder 'Driftloop'"),
    ):
        publish(client, _dashboards())
    assert grafana.dashboards == {}


@pytest.mark.parametrize(
    ("title", "uid"),
    [("Driftloop", "driftloop"), ("ML / Models (prod)", "ml-models-prod"), ("!!!", "driftloop")],
)
def test_folder_uids_are_slugs(title: str, uid: str) -> None:
    assert folder_uid(title) == uid
    assert len(folder_uid("x" * 100)) == 40


def test_the_command_publishes_and_prints_the_urls(grafana: FakeGrafana) -> None:
    result = CliRunner().invoke(
        app,
        ["dashboards", "publish", "--url", grafana.url, "--token", TOKEN, "--folder", "Models"],
    )
    assert result.exit_code == 0, result.output
    assert sorted(grafana.dashboards) == UIDS
    assert grafana.folders["models"]["title"] == "Models"
    for uid in UIDS:
        assert f"{grafana.url}/d/{uid}/" in result.output


def test_the_command_reads_url_and_token_from_the_environment(grafana: FakeGrafana) -> None:
    result = CliRunner().invoke(
        app,
        ["dashboards", "publish"],
        env={"DRIFTLOOP_GRAFANA_URL": grafana.url, "DRIFTLOOP_GRAFANA_TOKEN": TOKEN},
    )
    assert result.exit_code == 0, result.output
    assert sorted(grafana.dashboards) == UIDS


def test_the_command_fails_clearly_on_a_bad_token(grafana: FakeGrafana) -> None:
    result = CliRunner().invoke(
        app, ["dashboards", "publish", "--url", grafana.url, "--token", "nope"]
    )
    assert result.exit_code == 2
    assert "Unauthorized" in result.output
    assert grafana.dashboards == {}


def test_the_command_refuses_a_url_without_scheme() -> None:
    result = CliRunner().invoke(
        app, ["dashboards", "publish", "--url", "grafana.local:3000", "--token", TOKEN]
    )
    assert result.exit_code == 2
    assert "grafana.local:3000" in result.output


def test_an_unreachable_grafana_is_an_error_not_a_traceback() -> None:
    from tests.procs import free_port

    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        app, ["dashboards", "publish", "--url", url, "--token", TOKEN, "--timeout", "2"]
    )
    assert result.exit_code == 3, result.output
    assert "cannot find or create Grafana folder 'Driftloop'" in result.output


def test_a_refused_dashboard_is_an_error_naming_it(grafana: FakeGrafana) -> None:
    grafana.locked_dashboards.add("driftloop-model")
    with (
        _client(grafana) as client,
        pytest.raises(PublishError, match=r"refused dashboard 'driftloop-model'.*provisioned"),
    ):
        publish(client, _dashboards())
