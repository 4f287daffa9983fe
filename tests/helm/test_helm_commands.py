"""The commands and settings the chart renders are accepted by the real ``driftloop`` CLI.

Each Driftloop container's arguments are parsed by the CLI's own click command (unknown flags
and bad types fail here, not in a crash-looping pod), the sidecar's flags are turned into
``SidecarSettings``, and the monitor's ConfigMap is read back into ``Settings``.
"""

from __future__ import annotations

from typing import Any

import pytest
import typer
from pydantic import BaseModel

from driftloop.cli import app
from driftloop.settings import Settings, SidecarSettings
from tests.helm.helm_render import Rendered

SIDECAR_FIELDS = {
    "champion": "champion_url",
    "challenger": "challenger_url",
    "monitor": "monitor_url",
}


def _driftloop_containers(rendered: Rendered) -> list[dict[str, Any]]:
    out = []
    for workload in rendered.workloads():
        for container in workload["spec"]["template"]["spec"]["containers"]:
            if "/driftloop/driftloop" in container["image"]:
                out.append(container)
    return out


def _parse(args: list[str]) -> tuple[str, dict[str, Any]]:
    """Resolve ``args`` to a (sub)command and parse its options like the CLI would."""
    # Typer vendors its own click: walk the group by duck typing.
    command: Any = typer.main.get_command(app)
    context = command.make_context("driftloop", [], resilient_parsing=True)
    path = []
    rest = list(args)
    while hasattr(command, "resolve_command"):
        name, sub, rest = command.resolve_command(context, rest)
        assert sub is not None
        assert name is not None
        path.append(name)
        command = sub
        context = command.make_context(name, [], parent=context, resilient_parsing=True)
    parsed = command.make_context(" ".join(path), rest, parent=context.parent)
    return " ".join(path), parsed.params


def test_every_driftloop_container_runs_a_real_command(rendered: Rendered) -> None:
    seen = set()
    for container in _driftloop_containers(rendered):
        name, _ = _parse(container["args"])
        seen.add(name)
    expected = set()
    if rendered.values.get("monitor", {}).get("enabled", True):
        expected.add("monitor")
        if rendered.values.get("migrations", {}).get("enabled", True):
            expected.add("db upgrade")
    if rendered.values.get("models"):
        expected.add("sidecar")
    assert seen == expected


def test_sidecar_flags_make_valid_sidecar_settings(rendered: Rendered) -> None:
    for container in _driftloop_containers(rendered):
        name, params = _parse(container["args"])
        if name != "sidecar":
            continue
        fields = {
            SIDECAR_FIELDS.get(key, key): value
            for key, value in params.items()
            if value is not None and key not in {"spool_dir", "log_level"}
        }
        settings = SidecarSettings(**fields)
        assert settings.host == "0.0.0.0", "a Service cannot reach a sidecar bound to loopback"
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert (settings.port, settings.admin_port) == (ports["http"], ports["admin"])
        assert settings.mode == ("single" if settings.challenger_url is None else settings.mode)


def _setting_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    paths = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths |= _setting_paths(annotation, f"{prefix}{name}__")
        else:
            paths.add(f"{prefix}{name}".upper())
    return paths


def test_monitor_settings_are_real_settings(
    rendered: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_maps = [
        c for c in rendered.of_kind("ConfigMap") if c["metadata"]["name"].endswith("-monitor")
    ]
    if not config_maps:
        pytest.skip("no monitor in this values set")
    (config,) = config_maps
    known = _setting_paths(Settings)
    for key, value in config["data"].items():
        assert key.removeprefix("DRIFTLOOP_") in known, f"{key} is not a Driftloop setting"
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DRIFTLOOP_DATABASE_URL", "postgresql+psycopg://driftloop@db/driftloop")
    settings = Settings()
    assert settings.retention_days == int(config["data"]["DRIFTLOOP_RETENTION_DAYS"])


def test_an_unknown_flag_would_be_caught() -> None:
    with pytest.raises(Exception, match="no-such-flag"):
        _parse(["sidecar", "--model", "iris", "--champion", "http://x", "--no-such-flag"])
    with pytest.raises(Exception, match="valid number"):
        _parse(["sidecar", "--model", "iris", "--champion", "http://x", "--weight", "lots"])
