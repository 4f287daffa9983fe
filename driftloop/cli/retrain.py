"""``driftloop retrain NAME``: fire a retraining trigger through the monitor's API."""

from __future__ import annotations

import json
from typing import Any

import typer

DEFAULT_URL = "http://127.0.0.1:8080"


def monitor_client(url: str, token: str | None, timeout: float = 30.0) -> Any:
    """An HTTP client for the monitor API with the bearer token, if any."""
    import httpx

    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)


def fail_on_error(response: Any) -> Any:
    """The JSON body of a 2xx answer; otherwise print the monitor's message and exit 2 (4xx:
    the request was refused) or 3 (5xx: the monitor cannot serve it now)."""
    if not response.is_success:
        from driftloop.cli.exits import fail, http_status_code

        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        fail(f"HTTP {response.status_code}: {detail}", http_status_code(response.status_code))
    return response.json()


def request(method: str, url: str, token: str | None, path: str, **kwargs: Any) -> Any:
    """Call the monitor; connection problems become a one-line error and exit code 3."""
    import httpx

    try:
        with monitor_client(url, token) as client:
            return fail_on_error(client.request(method, path, **kwargs))
    except httpx.HTTPError as exc:
        from driftloop.cli.exits import UNREACHABLE, fail

        fail(f"cannot reach the monitor at {url}: {exc}", UNREACHABLE)


def retrain(
    name: str = typer.Argument(..., help="Model to retrain."),
    note: str | None = typer.Option(None, help="Why, recorded in the trigger's evidence."),
    force: bool = typer.Option(False, "--force", help="Fire even within the cooldown."),
    url: str = typer.Option(DEFAULT_URL, envvar="DRIFTLOOP_MONITOR_URL", help="Monitor base URL."),
    token: str | None = typer.Option(
        None, envvar="DRIFTLOOP_MONITOR_TOKEN", help="Bearer token with the admin scope."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the trigger as JSON."),
) -> None:
    """Fire a retraining trigger now: snapshot the labeled data and send the webhook."""
    body = {"note": note, "force": force}
    trigger = request("POST", url, token, f"/v1/models/{name}/retrain", json=body)
    if as_json:
        typer.echo(json.dumps(trigger, indent=2))
        return
    dataset = trigger.get("dataset") or {}
    typer.echo(
        f"trigger {trigger['id']} fired for {name}: webhook {trigger.get('webhook_id') or '-'} "
        f"({trigger.get('delivery') or 'no webhook URL configured'}), "
        f"snapshot {trigger.get('snapshot_id') or '-'} with {dataset.get('rows', 0)} rows"
    )
