"""The few MLflow REST calls Driftloop makes: aliases, tags, a model version, webhooks.

Plain HTTP on the shared ``httpx.Client`` (no MLflow package in the monitor: its dependencies
would fight ours). Paths and bodies follow MLflow 3's REST API (``/api/2.0/mlflow/...``);
registry webhooks exist from MLflow 3.3.0 on. Errors carry MLflow's ``error_code`` and message.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx

from driftloop.errors import DriftloopError
from driftloop.settings import MlflowSettings
from driftloop.urls import redact_url

API = "/api/2.0/mlflow"


class MlflowError(DriftloopError, RuntimeError):
    """MLflow refused a call or could not be reached; ``status`` is None when unreachable."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def auth_headers(settings: MlflowSettings) -> dict[str, str]:
    """The Authorization header MLflow's own client would send (token, else basic auth)."""
    if settings.tracking_token:
        return {"authorization": f"Bearer {settings.tracking_token}"}
    if settings.username and settings.password:
        raw = f"{settings.username}:{settings.password}".encode()
        return {"authorization": "Basic " + base64.b64encode(raw).decode()}
    return {}


class MlflowRest:
    """Calls against one MLflow tracking server."""

    def __init__(
        self, http: httpx.Client, base_url: str, settings: MlflowSettings, timeout: float = 30.0
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.headers = auth_headers(settings)
        self.timeout = timeout

    def call(
        self, method: str, path: str, *, json: Any = None, params: Any = None
    ) -> dict[str, Any]:
        """One call; raises :class:`MlflowError` naming the call and MLflow's answer."""
        url = f"{self.base_url}{API}{path}"
        try:
            response = self.http.request(
                method, url, json=json, params=params, headers=self.headers, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise MlflowError(
                f"MLflow at {redact_url(self.base_url)} is unreachable "
                f"({type(exc).__name__}: {exc}); {method} {path} is retried later"
            ) from exc
        if response.is_success:
            body = response.json() if response.content else {}
            return body if isinstance(body, dict) else {}
        try:
            problem = response.json()
            detail = f"{problem.get('error_code')}: {problem.get('message')}"
        except ValueError:
            detail = response.text
        raise MlflowError(
            f"MLflow answered {response.status_code} to {method} {path}: {detail[:300]}",
            response.status_code,
        )

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``alias`` of registered model ``name`` at ``version`` (moves it if set)."""
        self.call(
            "POST",
            "/registered-models/alias",
            json={"name": name, "alias": alias, "version": version},
        )

    def alias_version(self, name: str, alias: str) -> str | None:
        """The version ``alias`` points at, or None when the alias is not set."""
        try:
            body = self.call(
                "GET", "/registered-models/alias", params={"name": name, "alias": alias}
            )
        except MlflowError as exc:
            if exc.status == 404:
                return None
            raise
        version = (body.get("model_version") or {}).get("version")
        return None if version is None else str(version)

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` (absent already is fine)."""
        try:
            self.call("DELETE", "/registered-models/alias", json={"name": name, "alias": alias})
        except MlflowError as exc:
            if exc.status != 404:
                raise

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        """Set one tag on a model version."""
        self.call(
            "POST",
            "/model-versions/set-tag",
            json={"name": name, "version": version, "key": key, "value": value},
        )

    def set_run_tags(self, run_id: str, tags: dict[str, str]) -> None:
        """Set tags on a run in one call."""
        body = {"run_id": run_id, "tags": [{"key": k, "value": v} for k, v in tags.items()]}
        self.call("POST", "/runs/log-batch", json=body)

    def model_version(self, name: str, version: str) -> dict[str, Any]:
        """The model version as MLflow describes it (tags as a ``{key: value}`` dict)."""
        body = self.call("GET", "/model-versions/get", params={"name": name, "version": version})
        found = dict(body.get("model_version") or {})
        found["tags"] = {t["key"]: t.get("value", "") for t in found.get("tags") or []}
        return found

    def webhooks(self) -> list[dict[str, Any]]:
        """Every webhook of the server."""
        out: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params = {"max_results": 100, **({"page_token": token} if token else {})}
            body = self.call("GET", "/webhooks", params=params)
            out.extend(body.get("webhooks") or [])
            token = body.get("next_page_token")
            if not token:
                return out

    def create_webhook(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a webhook; returns it (without its secret)."""
        return dict(self.call("POST", "/webhooks", json=body).get("webhook") or {})

    def update_webhook(self, webhook_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Update a webhook's URL, events, secret or status."""
        return dict(self.call("PATCH", f"/webhooks/{webhook_id}", json=body).get("webhook") or {})
