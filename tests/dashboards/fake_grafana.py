"""A loopback stand-in for Grafana's HTTP API, strict about what the documentation says.

It serves the endpoints ``driftloop dashboards publish`` may call — ``GET /api/search``,
``GET|POST /api/folders``, ``POST /api/dashboards/db`` — checks every request's method, path, bearer
token, content type and body, answers like Grafana does, and records everything it saw so tests
can assert on the exact conversation. Anything else is a 404 and counted as unexpected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.dashboards.loopback import serve

TOKEN = "glsa_driftloop_test_token"


@dataclass
class Seen:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class FakeGrafana:
    """The server's state: folders, dashboards (by uid, with versions) and the request log."""

    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    hidden_folders: set[str] = field(default_factory=set)
    locked_dashboards: set[str] = field(default_factory=set)
    url: str = ""

    def app(self) -> Starlette:
        """The ASGI app serving the documented endpoints."""
        return Starlette(
            routes=[
                Route("/api/search", self._search, methods=["GET"]),
                Route("/api/folders", self._create_folder, methods=["POST"]),
                Route("/api/folders/{uid}", self._get_folder, methods=["GET"]),
                Route("/api/dashboards/db", self._save_dashboard, methods=["POST"]),
                Route("/{rest:path}", self._other, methods=["GET", "POST", "PUT", "DELETE"]),
            ]
        )

    async def _guard(self, request: Request) -> tuple[Any, JSONResponse | None]:
        body: Any = None
        raw = await request.body()
        if request.method == "POST":
            if not request.headers.get("content-type", "").startswith("application/json"):
                return None, JSONResponse({"message": "bad content type"}, 415)
            body = json.loads(raw)
        self.requests.append(
            Seen(request.method, request.url.path, dict(request.query_params), body)
        )
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return body, JSONResponse({"message": "Unauthorized"}, 401)
        return body, None

    async def _search(self, request: Request) -> JSONResponse:
        _, denied = await self._guard(request)
        if denied:
            return denied
        kind = request.query_params.get("type")
        if kind not in (None, "dash-folder", "dash-db"):
            return JSONResponse({"message": f"invalid type {kind}"}, 400)
        query = request.query_params.get("query", "").lower()
        hits: list[dict[str, Any]] = []
        if kind in (None, "dash-folder"):
            hits += [
                {
                    "id": f["id"],
                    "uid": uid,
                    "title": f["title"],
                    "type": "dash-folder",
                    "url": f["url"],
                    "tags": [],
                    "isStarred": False,
                }
                for uid, f in self.folders.items()
                if query in f["title"].lower() and uid not in self.hidden_folders
            ]
        if kind in (None, "dash-db"):
            hits += [
                {
                    "id": d["id"],
                    "uid": uid,
                    "title": d["dashboard"]["title"],
                    "type": "dash-db",
                    "url": d["url"],
                    "tags": d["dashboard"].get("tags", []),
                    "isStarred": False,
                    "folderUid": d["folderUid"],
                }
                for uid, d in self.dashboards.items()
                if query in d["dashboard"]["title"].lower()
            ]
        return JSONResponse(hits)

    async def _create_folder(self, request: Request) -> JSONResponse:
        body, denied = await self._guard(request)
        if denied:
            return denied
        title, uid = body.get("title"), body.get("uid")
        if not isinstance(title, str) or not title.strip():
            return JSONResponse({"message": "folder title cannot be empty"}, 400)
        if uid is not None and (not isinstance(uid, str) or len(uid) > 40):
            return JSONResponse({"message": "uid too long, max 40 characters"}, 400)
        if set(body) - {"title", "uid", "parentUid", "description"}:
            return JSONResponse({"message": f"unknown fields {sorted(body)}"}, 400)
        uid = uid or f"gen{len(self.folders)}"
        if uid in self.folders:
            return JSONResponse({"message": "a folder with the same uid already exists"}, 409)
        if any(f["title"] == title for f in self.folders.values()):
            return JSONResponse({"message": "a folder with the same name already exists"}, 409)
        folder = {
            "id": len(self.folders) + 1,
            "uid": uid,
            "title": title,
            "url": f"/dashboards/f/{uid}/{_slug(title)}",
            "version": 1,
        }
        self.folders[uid] = folder
        return JSONResponse(folder)

    async def _get_folder(self, request: Request) -> JSONResponse:
        _, denied = await self._guard(request)
        if denied:
            return denied
        folder = self.folders.get(request.path_params["uid"])
        if folder is None:
            return JSONResponse({"message": "folder not found"}, 404)
        return JSONResponse(folder)

    async def _save_dashboard(self, request: Request) -> JSONResponse:
        body, denied = await self._guard(request)
        if denied:
            return denied
        dashboard = body.get("dashboard")
        if not isinstance(dashboard, dict) or not dashboard.get("title"):
            return JSONResponse({"message": "Dashboard title cannot be empty"}, 400)
        if set(body) - {"dashboard", "folderId", "folderUid", "message", "overwrite"}:
            return JSONResponse({"message": f"unknown fields {sorted(body)}"}, 400)
        folder_uid = body.get("folderUid")
        if folder_uid is not None and folder_uid not in self.folders:
            return JSONResponse({"message": "folder not found", "status": "not-found"}, 400)
        uid = str(dashboard.get("uid") or f"generated{len(self.dashboards)}")
        existing = self.dashboards.get(uid)
        if uid in self.locked_dashboards:
            return JSONResponse(
                {"message": "Cannot save provisioned dashboard", "status": "provisioned"}, 400
            )
        if existing and not body.get("overwrite"):
            return JSONResponse(
                {
                    "message": "The dashboard has been changed by someone else",
                    "status": "version-mismatch",
                },
                412,
            )
        if dashboard.get("id") is not None and existing is None:
            return JSONResponse({"message": "Dashboard not found", "status": "not-found"}, 404)
        version = existing["version"] + 1 if existing else 1
        number = existing["id"] if existing else len(self.dashboards) + 1
        url = f"/d/{uid}/{_slug(dashboard['title'])}"
        self.dashboards[uid] = {
            "id": number,
            "version": version,
            "url": url,
            "folderUid": folder_uid,
            "dashboard": dashboard,
            "message": body.get("message"),
        }
        return JSONResponse(
            {
                "id": number,
                "uid": uid,
                "url": url,
                "status": "success",
                "version": version,
                "slug": _slug(dashboard["title"]),
            }
        )

    async def _other(self, request: Request) -> JSONResponse:
        self.unexpected.append(f"{request.method} {request.url.path}")
        return JSONResponse({"message": "Not found"}, 404)


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


@contextmanager
def running(fake: FakeGrafana) -> Iterator[FakeGrafana]:
    """Serve ``fake`` on loopback; ``fake.url`` is its base URL meanwhile."""
    with serve(fake.app()) as url:
        fake.url = url
        yield fake
