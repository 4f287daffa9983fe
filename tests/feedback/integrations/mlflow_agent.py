"""MLflow's own client, driven over stdin/stdout: runs under the MLflow venv's Python.

One JSON request per line (``{"op": ..., ...}``), one JSON answer per line (``{"ok": ...}`` or
``{"error": ...}``). A long-lived process, because importing MLflow takes seconds. Imports only
MLflow and the standard library (it does not run in Driftloop's venv).
"""

from __future__ import annotations

import json
import sys
from typing import Any


def main() -> None:
    """Serve requests until stdin closes."""
    answers, sys.stdout = sys.stdout, sys.stderr  # MLflow prints to stdout: keep it for answers
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()

    def create_webhook(name: str, url: str, events: list[str], secret: str) -> Any:
        hook = client.create_webhook(name=name, url=url, events=events, secret=secret)
        return {"webhook_id": hook.webhook_id, "events": [str(e) for e in hook.events]}

    def train(experiment: str, params: dict[str, str]) -> Any:
        mlflow.set_experiment(experiment)
        with mlflow.start_run() as run:
            mlflow.log_params(params)
        return {"run_id": run.info.run_id}

    def create_version(name: str, run_id: str | None, tags: dict[str, str]) -> Any:
        try:
            client.create_registered_model(name)
        except mlflow.exceptions.MlflowException as exc:
            if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                raise
        source = f"runs:/{run_id}/model" if run_id else "s3://driftloop-test/model"
        version = client.create_model_version(name, source, run_id=run_id, tags=tags)
        return {"version": version.version}

    def describe(name: str, version: str) -> Any:
        found = client.get_model_version(name, version)
        return {"aliases": list(found.aliases), "tags": dict(found.tags), "run_id": found.run_id}

    def aliases(name: str) -> Any:
        return dict(client.get_registered_model(name).aliases)

    def run_tags(run_id: str) -> Any:
        return dict(client.get_run(run_id).data.tags)

    def webhooks() -> Any:
        return [
            {
                "webhook_id": w.webhook_id,
                "name": w.name,
                "url": w.url,
                "events": [str(e) for e in w.events],
                "status": str(w.status),
            }
            for w in client.list_webhooks()
        ]

    def test_webhook(webhook_id: str) -> Any:
        result = client.test_webhook(webhook_id)
        return {
            "success": result.success,
            "status": result.response_status,
            "body": result.response_body,
            "error": result.error_message,
        }

    ops = {
        "webhooks": webhooks,
        "test_webhook": test_webhook,
        "create_webhook": create_webhook,
        "train": train,
        "create_version": create_version,
        "describe": describe,
        "aliases": aliases,
        "run_tags": run_tags,
    }
    print(json.dumps({"ok": {"mlflow": mlflow.__version__}}), file=answers, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = {"ok": ops[request.pop("op")](**request)}
        except Exception as exc:  # reported to the test, which fails with it
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), file=answers, flush=True)


if __name__ == "__main__":
    main()
