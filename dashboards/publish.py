"""Upload the dashboards to a Grafana server through its HTTP API (with httpx).

Uses the long-standing endpoints every Grafana from 8 to 12 serves: ``GET /api/search`` with
``type=dash-folder`` to find the folder by title, ``POST /api/folders`` to create it, and
``POST /api/dashboards/db`` with ``overwrite: true`` so publishing twice updates in place (the
dashboards have fixed uids). Three calls do not need a Grafana client library.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

import driftloop
from driftloop.errors import DriftloopError

__all__ = ["PublishError", "Published", "connect", "ensure_folder", "folder_uid", "publish"]


class PublishError(DriftloopError, RuntimeError):
    """Grafana refused a request; the message names the request and Grafana's answer."""


class _Refused(Exception):
    """Grafana answered with an error: ``status_code`` and Grafana's ``message``."""

    def __init__(self, response: httpx.Response) -> None:
        try:
            message = str(response.json().get("message", ""))
        except ValueError:
            message = response.text[:200]
        reason = response.reason_phrase or "error"
        super().__init__(f"{response.status_code} {reason}: {message}".rstrip(": "))
        self.status_code = response.status_code


@dataclass(frozen=True)
class Published:
    """One dashboard as Grafana stored it."""

    uid: str
    title: str
    url: str
    version: int


@contextmanager
def connect(url: str, token: str, *, timeout: float = 30.0) -> Iterator[httpx.Client]:
    """An HTTP client for Grafana at ``url`` with a bearer ``token``; closed on exit."""
    client = httpx.Client(
        base_url=url.rstrip("/"),
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        timeout=httpx.Timeout(timeout),
    )
    try:
        yield client
    finally:
        client.close()


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    response = client.request(method, path, **kwargs)
    if response.is_error:
        raise _Refused(response)
    return response.json()


def folder_uid(title: str) -> str:
    """A stable folder uid from its title: lower case, dashes, at most 40 characters."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return (slug or "driftloop")[:40]


def ensure_folder(client: httpx.Client, title: str) -> str:
    """The uid of the folder called ``title``, created when no folder has that title."""
    try:
        hits = _call(client, "GET", "/api/search", params={"query": title, "type": "dash-folder"})
        for hit in hits:
            if hit.get("title") == title:
                return str(hit["uid"])
        uid = folder_uid(title)
        try:
            created = _call(client, "POST", "/api/folders", json={"title": title, "uid": uid})
        except _Refused as exc:
            if exc.status_code not in (409, 412):
                raise
            # Created between the search and now (or the uid is taken): use what is there.
            created = _call(client, "GET", f"/api/folders/{uid}")
        return str(created["uid"])
    except (_Refused, httpx.HTTPError, ValueError) as exc:  # HTTPError: connection, timeout
        raise PublishError(f"cannot find or create Grafana folder {title!r}: {exc}") from exc


def publish(
    client: httpx.Client, dashboards: Iterable[dict[str, Any]], *, folder: str = "Driftloop"
) -> list[Published]:
    """Create the folder if missing and upload every dashboard into it, overwriting by uid."""
    uid = ensure_folder(client, folder)
    out: list[Published] = []
    for dashboard in dashboards:
        body = {
            "dashboard": {**dashboard, "id": None},
            "folderUid": uid,
            "overwrite": True,
            "message": f"published by driftloop {driftloop.__version__}",
        }
        try:
            answer = _call(client, "POST", "/api/dashboards/db", json=body)
        except (_Refused, httpx.HTTPError, ValueError) as exc:
            raise PublishError(
                f"Grafana refused dashboard {dashboard.get('uid')!r} "
                f"({dashboard.get('title')!r}): {exc}"
            ) from exc
        out.append(
            Published(
                uid=str(answer.get("uid", dashboard.get("uid"))),
                title=str(dashboard.get("title")),
                url=str(answer.get("url", "")),
                version=int(answer.get("version", 0)),
            )
        )
    return out
