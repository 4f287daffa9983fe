"""``driftloop mlflow setup``: create (or update) the MLflow webhook that feeds Driftloop."""

from __future__ import annotations

import json

import typer

app = typer.Typer(help="MLflow Model Registry: webhooks in, verdicts back.", no_args_is_help=True)

EVENTS = {
    "model_version.created": ("MODEL_VERSION", "CREATED"),
    "model_version_tag.set": ("MODEL_VERSION_TAG", "SET"),
    "model_version_alias.created": ("MODEL_VERSION_ALIAS", "CREATED"),
}


@app.command("setup")
def setup(
    tracking_uri: str = typer.Option(
        ...,
        envvar=["DRIFTLOOP_MLFLOW__TRACKING_URI", "MLFLOW_TRACKING_URI"],
        help="MLflow tracking server URL (3.3.0 or newer).",
    ),
    monitor_url: str = typer.Option(
        ...,
        envvar="DRIFTLOOP_MONITOR_URL",
        help="Driftloop monitor base URL as MLflow reaches it; the webhook posts to "
        "<monitor-url>/v1/integrations/mlflow.",
    ),
    secret: str | None = typer.Option(
        None,
        envvar="DRIFTLOOP_MLFLOW__WEBHOOK_SECRET",
        help="The webhook secret; a new one is made and printed when none is given.",
    ),
    events: list[str] = typer.Option(
        ["model_version.created"],
        "--event",
        help="Events to subscribe (repeat): " + ", ".join(EVENTS) + ".",
    ),
    name: str = typer.Option("driftloop", help="The webhook's name in MLflow."),
    token: str | None = typer.Option(
        None, envvar="MLFLOW_TRACKING_TOKEN", help="Bearer token for MLflow."
    ),
    username: str | None = typer.Option(None, envvar="MLFLOW_TRACKING_USERNAME"),
    password: str | None = typer.Option(None, envvar="MLFLOW_TRACKING_PASSWORD"),
    as_json: bool = typer.Option(False, "--json", help="Print the webhook as JSON."),
) -> None:
    """Create the webhook in MLflow with the secret (or update the one with the same name)."""
    import secrets

    import httpx

    from driftloop.feedback.integrations.mlflow_rest import MlflowError, MlflowRest
    from driftloop.settings import MlflowSettings

    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        typer.echo(f"error: unknown event {unknown[0]!r}; use one of {', '.join(EVENTS)}", err=True)
        raise typer.Exit(2)
    made = secret is None
    secret = secret or secrets.token_urlsafe(32)
    url = monitor_url.rstrip("/") + "/v1/integrations/mlflow"
    body = {
        "name": name,
        "url": url,
        "events": [{"entity": EVENTS[e][0], "action": EVENTS[e][1]} for e in events],
        "description": "Driftloop: registers new versions as challengers and starts rollouts",
        "secret": secret,
        "status": "ACTIVE",
    }
    settings = MlflowSettings(tracking_token=token, username=username, password=password)
    with httpx.Client() as http:
        rest = MlflowRest(http, tracking_uri, settings)
        try:
            existing = [w for w in rest.webhooks() if w.get("name") == name]
            if existing:
                webhook = rest.update_webhook(existing[0]["webhook_id"], body)
                action = "updated"
            else:
                webhook = rest.create_webhook(body)
                action = "created"
        except MlflowError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
    if as_json:
        typer.echo(
            json.dumps(
                {"action": action, "webhook": webhook, **({"secret": secret} if made else {})},
                indent=2,
            )
        )
        return
    typer.echo(f"MLflow webhook {webhook.get('webhook_id')} {action}: {', '.join(events)} -> {url}")
    if made:
        typer.echo("Give the monitor the same secret:")
        typer.echo(f"  export DRIFTLOOP_MLFLOW__WEBHOOK_SECRET={secret}")
    typer.echo(
        "MLflow must be allowed to call the monitor: for an http:// or private address start "
        "`mlflow server` with MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https and "
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true, and with MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY set."
    )
