"""``driftloop sidecar``: the capture and routing proxy in front of a model's Bentos."""

from __future__ import annotations

import logging
from typing import Any

import typer


def sidecar(
    model: str = typer.Option(..., help="Model name the records are logged under."),
    champion: str = typer.Option(..., help="Base URL of the champion Bento."),
    champion_version: str | None = typer.Option(None, help="Champion's version label."),
    challenger: str | None = typer.Option(None, help="Base URL of the challenger Bento."),
    challenger_version: str | None = typer.Option(None, help="Challenger's version label."),
    mode: str | None = typer.Option(
        None, help="canary | ab | shadow (default: canary with a challenger, else single)."
    ),
    weight: float | None = typer.Option(None, help="Challenger share for canary and A/B (0.1)."),
    sticky_key: str | None = typer.Option(
        None, help="A/B key: header:X-User-ID or json:customer_id."
    ),
    monitor: str | None = typer.Option(
        None, help="Monitor base URL (records and policy); required unless --no-capture."
    ),
    no_capture: bool = typer.Option(
        False, "--no-capture", help="Route only: record nothing (no --monitor needed)."
    ),
    host: str | None = typer.Option(None, help="Address to bind both ports (127.0.0.1)."),
    port: int | None = typer.Option(None, help="Data port (8000)."),
    admin_port: int | None = typer.Option(None, help="Admin port: /metrics /healthz /readyz."),
    spool_dir: str | None = typer.Option(
        None,
        help="Folder of the crash-safe capture log (default: "
        "$XDG_STATE_HOME/driftloop/spool/<model>-<port>, ~/.local/state without XDG).",
    ),
    memory_spool: bool = typer.Option(
        False, "--memory-spool", help="Keep captured records in memory only (lost on a crash)."
    ),
    fsync_seconds: float | None = typer.Option(
        None, help="fsync the capture log this often, for power loss (1 s; 0: every request)."
    ),
    poll_seconds: float | None = typer.Option(None, help="Routing policy poll period (5 s)."),
    log_level: str = typer.Option("info", help="Log level."),
) -> None:
    """Proxy a model's Bentos, route champion/challenger and log every prediction.

    The bearer token for the monitor comes from DRIFTLOOP_MONITOR_TOKEN; every other setting
    also reads DRIFTLOOP_SIDECAR_* variables (flags win).
    """
    from driftloop.serving.sidecar import run_sidecar
    from driftloop.settings import SidecarSettings

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    flags: dict[str, Any] = {
        "model": model,
        "champion_url": champion,
        "champion_version": champion_version,
        "challenger_url": challenger,
        "challenger_version": challenger_version,
        "mode": mode,
        "weight": weight,
        "sticky_key": sticky_key,
        "monitor_url": monitor,
        "host": host,
        "port": port,
        "admin_port": admin_port,
        "poll_seconds": poll_seconds,
        "no_capture": no_capture or None,
    }
    settings = SidecarSettings(**{k: v for k, v in flags.items() if v is not None})
    if spool_dir is not None:
        settings.capture.spool_dir = spool_dir
    if memory_spool:
        settings.capture.memory_spool = True
    if fsync_seconds is not None:
        settings.capture.fsync_seconds = fsync_seconds
    if settings.monitor_url is None and not settings.no_capture:
        from driftloop.cli.exits import fail

        fail(
            "the sidecar needs --monitor URL (or DRIFTLOOP_SIDECAR_MONITOR_URL) to record "
            "predictions; pass --no-capture to route without recording"
        )
    run_sidecar(settings)
