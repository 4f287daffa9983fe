"""The server's process-wide state, built once by ``create_app`` and handed to every part.

Shared by the monitor and feedback components: their routes get it with :func:`get_state`, their
jobs receive it when they run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import Request
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from driftloop.clock import Clock
from driftloop.settings import Settings
from driftloop.store import Model
from driftloop.store.records import StoredRecord

if TYPE_CHECKING:
    from driftloop.web.jobs import JobRunner
    from driftloop.web.metrics import MonitorMetrics

IngestHook = Callable[[Session, Model, list[StoredRecord]], None]
"""Called inside the ingest transaction with the newly stored rows of one model."""

ModelSection = Callable[[Session, Model], Any]
"""Adds a JSON-able section to ``GET /v1/models/{name}``; registered under ``parent.child``
(``performance.estimated``) it becomes the key ``child`` of the section ``parent`` (created when
no component adds it)."""

ModelHistory = Callable[[Session, Model], list[dict[str, Any]]]
"""Lists a model's past events (rollout decisions, retraining triggers) for the status page."""


@dataclass
class MonitorState:
    """Everything the monitor's endpoints and jobs share."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    registry: CollectorRegistry
    metrics: MonitorMetrics
    jobs: JobRunner[MonitorState]
    http: httpx.Client
    ingest_hooks: list[IngestHook] = field(default_factory=list)
    model_sections: dict[str, ModelSection] = field(default_factory=dict)
    model_history: dict[str, ModelHistory] = field(default_factory=dict)
    """Past events per kind (``decisions``, ``triggers``), added by the component that owns them."""
    known_versions: set[tuple[int, str]] = field(default_factory=set)
    """(model id, version) pairs known to be registered: ingest skips registering them again."""


def get_state(request: Request) -> MonitorState:
    """FastAPI dependency: the state of the app serving this request."""
    state: MonitorState = request.app.state.driftloop
    return state
