"""The monitor's process-wide state, built once by ``create_app`` and handed to every part."""

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
from driftloop.monitor.writer import StoredRecord
from driftloop.settings import Settings
from driftloop.store import Model

if TYPE_CHECKING:
    from driftloop.monitor.jobs import JobRunner
    from driftloop.monitor.metrics import MonitorMetrics

IngestHook = Callable[[Session, Model, list[StoredRecord]], None]
"""Called inside the ingest transaction with the newly stored rows of one model."""

ModelSection = Callable[[Session, Model], Any]
"""Adds a JSON-able section to ``GET /v1/models/{name}``."""


@dataclass
class MonitorState:
    """Everything the monitor's endpoints and jobs share."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    registry: CollectorRegistry
    metrics: MonitorMetrics
    jobs: JobRunner
    http: httpx.Client
    ingest_hooks: list[IngestHook] = field(default_factory=list)
    model_sections: dict[str, ModelSection] = field(default_factory=dict)
    known_versions: set[tuple[int, str]] = field(default_factory=set)
    """(model id, version) pairs known to be registered: ingest skips registering them again."""


def get_state(request: Request) -> MonitorState:
    """FastAPI dependency: the state of the app serving this request."""
    state: MonitorState = request.app.state.driftloop
    return state
