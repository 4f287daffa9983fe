"""A record as stored: the columns of ``records``, the shape ingest hooks receive."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["StoredRecord"]


@dataclass(slots=True)
class StoredRecord:
    """A record as stored: the columns of ``records``, without an ORM object's overhead."""

    id: int
    model_id: int
    version: str
    variant: str
    request_id: str
    ts: datetime
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    latency_ms: float
    status: int
    received_at: datetime
