"""Upload the dashboards to a Grafana server through its HTTP API (with grafana-client).

Uses the long-standing endpoints every Grafana from 8 to 12 serves: ``GET /api/search`` with
``type=dash-folder`` to find the folder by title, ``POST /api/folders`` to create it, and
``POST /api/dashboards/db`` with ``overwrite: true`` so publishing twice updates in place (the
dashboards have fixed uids).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

import driftloop
from driftloop.errors import DriftloopError

__all__ = ["PublishError", "Published", "connect", "ensure_folder", "folder_uid", "publish"]


class PublishError(DriftloopError, RuntimeError):
    """Grafana refused a request; the message names the request and Grafana's answer."""


@dataclass(frozen=True)
class Published:
    """One dashboard as Grafana stored it."""

    uid: str
    title: str
    url: str
    version: int


@contextmanager
def connect(url: str, token: str, *, timeout: float = 30.0) -> Iterator[GrafanaApi]:
    """A Grafana client authenticated with a bearer ``token``; its connections close on exit."""
    client = GrafanaApi.from_url(url, credential=token, timeout=timeout)
    try:
        yield client
    finally:
        # grafana-client has no close(); its HTTP session is the ``s`` of its low-level client.
        client.client.s.close()


def folder_uid(title: str) -> str:
    """A stable folder uid from its title: lower case, dashes, at most 40 characters."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return (slug or "driftloop")[:40]


def ensure_folder(client: GrafanaApi, title: str) -> str:
    """The uid of the folder called ``title``, created when no folder has that title."""
    try:
        hits = client.search.search_dashboards(query=title, type_="dash-folder")
        for hit in hits:
            if hit.get("title") == title:
                return str(hit["uid"])
        uid = folder_uid(title)
        try:
            created = client.folder.create_folder(title, uid=uid)
        except GrafanaClientError as exc:
            if exc.status_code not in (409, 412):
                raise
            # Created between the search and now (or the uid is taken): use what is there.
            created = client.folder.get_folder(uid)
        return str(created["uid"])
    except (GrafanaException, OSError) as exc:  # OSError: connection errors of the HTTP client
        raise PublishError(f"cannot find or create Grafana folder {title!r}: {exc}") from exc


def publish(
    client: GrafanaApi, dashboards: Iterable[dict[str, Any]], *, folder: str = "Driftloop"
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
            answer = client.dashboard.update_dashboard(body)
        except (GrafanaException, OSError) as exc:
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
