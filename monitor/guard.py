"""The access policy every request meets before its route: reads, content types, Host and Origin.

A pure ASGI middleware, so it also covers routes other components add, with one explicit rule
per concern:

- **Reads need the ``read`` scope** whenever tokens are configured (``admin`` implies it):
  configuration, lineage, request ids and results are not for anyone who can reach the port.
  Open to all: :data:`OPEN_PATHS` (liveness, readiness, metrics, the API description); an
  ``ingest`` token also reads :data:`SIDECAR_READS`, which a sidecar polls.
- **Content types are a per-route policy**: a route's accepted media types are the ones its
  OpenAPI request body declares (``PUT /v1/models/{name}/reference``: CSV and Parquet;
  ``POST /v1/feedback``: JSON, CSV, Parquet; a pydantic body: JSON). Anything else gets 415, so a
  browser's form or ``text/plain`` POST never reaches a write. A route without a declared body
  takes JSON or nothing. JSON means ``application/json`` or any ``application/*+json``.
- **Open mode (no tokens) answers loopback only**: the ``Host`` header must be a loopback name
  (or one of ``allowed_hosts``), which defeats DNS rebinding, and a write carrying a foreign
  ``Origin`` is refused, so a web page cannot drive the API from a developer's browser.
- **No CORS**: no ``Access-Control-Allow-*`` header is ever sent, so browsers keep cross-site
  pages from reading answers.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from driftloop.settings import Scope as TokenScope
from driftloop.settings import Settings
from driftloop.web.auth import authorize

__all__ = [
    "OPEN_PATHS",
    "SIDECAR_READS",
    "AccessGuard",
    "Operation",
    "content_type_refusal",
    "document_refusals",
    "is_json",
    "is_loopback_host",
    "operations",
]

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)
"""Paths anyone who reaches the port may read, tokens or not."""

SIDECAR_READS = frozenset({"/v1/models/{name}", "/v1/models/{name}/routing"})
"""Reads a sidecar polls with its ``ingest`` token (its model's schema and routing policy)."""

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
JSON = "application/json"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_json(media_type: str) -> bool:
    """True for ``application/json`` and the ``application/*+json`` family."""
    return media_type == JSON or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def is_loopback_host(host: str) -> bool:
    """True when ``host`` (no port) names this machine's loopback interface."""
    host = host.strip().rstrip(".").lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_of(value: str) -> str:
    """The host part of a ``Host`` header or of an origin's authority (port dropped)."""
    value = value.strip()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    name, sep, port = value.rpartition(":")
    return name if sep and port.isdigit() else value


@dataclass(frozen=True)
class Operation:
    """One (method, path template) of the API and the media types its body may have."""

    method: str
    template: str
    pattern: re.Pattern[str]
    accepts: frozenset[str] | None
    """Declared request body media types; None when the operation declares no body."""


def operations(document: dict[str, Any]) -> list[Operation]:
    """The per-route policy table, read from the app's OpenAPI document.

    The document is what clients are told, so the server enforces exactly that: a route that
    takes CSV declares ``text/csv`` in its ``requestBody`` and is the only kind that gets it.
    """
    out = []
    for template, item in (document.get("paths") or {}).items():
        regex = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        pattern = re.compile(f"^{regex}$")
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            body = operation.get("requestBody")
            content = body.get("content") if isinstance(body, dict) else None
            accepts = frozenset(str(k).lower() for k in content) if content else None
            out.append(Operation(method.upper(), template, pattern, accepts))
    return out


class AccessGuard:
    """Pure ASGI middleware applying the policy in this module's docstring."""

    def __init__(
        self, app: ASGIApp, settings: Settings, openapi: Callable[[], dict[str, Any]]
    ) -> None:
        self.app = app
        self.settings = settings
        self._openapi = openapi
        self._operations: list[Operation] | None = None
        hosts = {h.lower().strip("[]") for h in settings.allowed_hosts}
        if settings.host not in ("0.0.0.0", "::", ""):
            hosts.add(settings.host.lower().strip("[]"))
        self.allowed_hosts = frozenset(hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.check(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, detail, headers = refusal
        await JSONResponse({"detail": detail}, status_code=status, headers=headers)(
            scope, receive, send
        )

    def _host_allowed(self, host: str) -> bool:
        host = host.lower()
        return is_loopback_host(host) or host in self.allowed_hosts

    def check(self, scope: Scope) -> tuple[int, str, dict[str, str] | None] | None:
        """None to let the request through, else (status, detail, headers) of the refusal."""
        headers = Headers(scope=scope)
        method = scope.get("method", "GET").upper()
        path = scope.get("path", "")
        auth = self.settings.auth_enabled
        if not auth:
            refusal = self._open_mode(headers, method)
            if refusal is not None:
                return refusal
        if method == "OPTIONS":
            # No CORS, so no preflight: an OPTIONS names the documented methods and stops here.
            self._operation("GET", path)  # builds the table
            methods = allowed_methods(self._operations or [], path)
            if methods:
                allow = ", ".join(methods)
                return 405, f"OPTIONS is not served; this path takes {allow}", {"Allow": allow}
        if auth and method in READ_METHODS and path not in OPEN_PATHS:
            header = headers.get("authorization", "")
            error = authorize(header, self.settings.tokens, TokenScope.read)
            if error is not None and error.status_code == 403:
                operation = self._operation("GET", path)
                if operation is not None and operation.template in SIDECAR_READS:
                    error = authorize(header, self.settings.tokens, TokenScope.ingest)
            if error is not None:
                return error.status_code, str(error.detail), dict(error.headers or {}) or None
        if method not in READ_METHODS:
            operation = self._operation(method, path)
            return content_type_refusal(operation.accepts if operation else None, headers)
        return None

    def _open_mode(
        self, headers: Headers, method: str
    ) -> tuple[int, str, dict[str, str] | None] | None:
        raw_host = headers.get("host")
        if not raw_host:
            return 400, "missing Host header", None
        host = _host_of(raw_host)
        if not self._host_allowed(host):
            return (
                421,
                f"Host {host!r} is not served: without tokens the API answers loopback names "
                "only (add it to DRIFTLOOP_ALLOWED_HOSTS, or configure tokens)",
                None,
            )
        origin = headers.get("origin")
        if method not in READ_METHODS and origin is not None:
            origin_host = _host_of(origin.partition("://")[2].partition("/")[0])
            if origin == "null" or not self._host_allowed(origin_host):
                return (
                    403,
                    f"cross-site request from Origin {origin!r} refused: without tokens "
                    "writes are taken from loopback pages and non-browser clients only",
                    None,
                )
        return None

    def _operation(self, method: str, path: str) -> Operation | None:
        if self._operations is None:
            try:
                self._operations = operations(self._openapi())
            except Exception:  # a broken schema must not open the door: JSON-only everywhere
                log.exception("cannot build the OpenAPI document; every write takes JSON only")
                self._operations = []
        for operation in self._operations:
            if operation.method == method and operation.pattern.match(path):
                return operation
        return None


def content_type_refusal(
    declared: frozenset[str] | None, headers: Headers
) -> tuple[int, str, None] | None:
    """None when a write's ``Content-Type`` fits the route's declared body types, else a 415."""
    has_body = headers.get("content-length", "0") not in ("0", "") or (
        "transfer-encoding" in headers
    )
    raw = headers.get("content-type")
    media = raw.partition(";")[0].strip().lower() if raw else None
    if media is None:
        if not has_body:
            return None
        if declared and any(not is_json(t) for t in declared):
            return None  # a file upload route: the body's format is read from its bytes
        return 415, f"a body needs Content-Type: {_listed(declared)}", None
    if declared is None:
        if is_json(media) or not has_body:
            return None
        return 415, f"Content-Type {media!r} refused: this route takes JSON or no body", None
    if media in declared or (is_json(media) and JSON in declared):
        return None
    return 415, f"Content-Type {media!r} refused: this route takes {_listed(declared)}", None


def _listed(declared: frozenset[str] | None) -> str:
    return ", ".join(sorted(declared or {JSON}))


PROBLEM = {
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "What was wrong, naming the value."},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["detail"],
}
"""The body of every 4xx and 5xx answer: ``{"detail": "...", "errors": [...]}``."""

_EVERY_OPERATION = {
    "401": "Missing or unknown bearer token (when tokens are configured)",
    "403": "The token lacks the scope, or a write from a foreign Origin (open mode)",
    "421": "Host is not a loopback name (open mode)",
    "503": "Database unavailable; retry after the Retry-After delay",
}
_WITH_BODY = {
    "400": "The body is not valid JSON",
    "413": "Body over the size limits",
    "415": "Content-Type is not one this operation takes",
    "422": "The body breaks the schema; the message names the field",
}


def document_refusals(document: dict[str, Any]) -> dict[str, Any]:
    """Declare in ``document`` the answers the guard and the error handlers give, with the body
    they really have (FastAPI's default says ``detail`` is a list; ours is a string)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["HTTPValidationError"] = PROBLEM
    schemas["Problem"] = PROBLEM
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for item in (document.get("paths") or {}).values():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            extra = dict(_EVERY_OPERATION)
            if operation.get("requestBody") or operation.get("parameters"):
                extra["422"] = _WITH_BODY["422"]
            if operation.get("requestBody"):
                extra.update(_WITH_BODY)
            for code, description in extra.items():
                responses.setdefault(code, {"description": description, "content": ref})
    return document


def allowed_methods(table: list[Operation], path: str) -> list[str]:
    """The methods the API documents for ``path`` (for an ``Allow`` header)."""
    return sorted({op.method for op in table if op.pattern.match(path)})
