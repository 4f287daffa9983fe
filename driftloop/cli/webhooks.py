"""``driftloop webhooks list|status|replay``: the webhook delivery log, through the monitor API."""

from __future__ import annotations

import json

import typer

from driftloop.cli.retrain import DEFAULT_URL, request

app = typer.Typer(help="Retraining webhooks: delivery log and replays.", no_args_is_help=True)

URL = typer.Option(DEFAULT_URL, envvar="DRIFTLOOP_MONITOR_URL", help="Monitor base URL.")
TOKEN = typer.Option(
    None, envvar="DRIFTLOOP_MONITOR_TOKEN", help="Bearer token with the admin scope."
)


@app.command("list")
def list_deliveries(
    status: str | None = typer.Option(None, help="pending, delivered or failed."),
    model: str | None = typer.Option(None, help="Only this model's webhooks."),
    limit: int = typer.Option(50, help="At most this many, newest first."),
    url: str = URL,
    token: str | None = TOKEN,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List webhook messages and their delivery state."""
    params = {k: v for k, v in {"status": status, "model": model, "limit": limit}.items() if v}
    rows = request("GET", url, token, "/v1/webhooks/deliveries", params=params)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        typer.echo(
            f"{row['webhook_id']}  {row['status']:<9}  attempts={row['attempts']}  "
            f"created={row['created_at']}  {row['last_error'] or ''}".rstrip()
        )


@app.command("status")
def status(
    webhook_id: str = typer.Argument(..., help="The webhook-id (msg_...)."),
    url: str = URL,
    token: str | None = TOKEN,
) -> None:
    """Show one message with every delivery attempt."""
    typer.echo(
        json.dumps(request("GET", url, token, f"/v1/webhooks/deliveries/{webhook_id}"), indent=2)
    )


@app.command("replay")
def replay(
    webhook_ids: list[str] = typer.Argument(None, help="webhook-ids (msg_...) to send again."),
    failed: bool = typer.Option(False, "--failed", help="Replay every failed message."),
    model: str | None = typer.Option(None, help="With --failed: only this model's."),
    url: str = URL,
    token: str | None = TOKEN,
) -> None:
    """Send messages again, with the same webhook-id and body (receivers deduplicate)."""
    ids = list(webhook_ids or [])
    if failed:
        params = {"status": "failed", "limit": 1000, **({"model": model} if model else {})}
        ids += [
            r["webhook_id"]
            for r in request("GET", url, token, "/v1/webhooks/deliveries", params=params)
        ]
    if not ids:
        from driftloop.cli.exits import BAD_INPUT, fail

        fail("nothing to replay: name webhook ids or pass --failed", BAD_INPUT)
    for webhook_id in dict.fromkeys(ids):
        request("POST", url, token, f"/v1/webhooks/deliveries/{webhook_id}/replay")
        typer.echo(f"{webhook_id} queued for delivery")
