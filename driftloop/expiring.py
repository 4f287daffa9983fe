"""A value read at most once per time-to-live, shared by the threads that ask for it.

The ``/metrics`` collectors read the database on a scrape; several scrapers (Prometheus
replicas, a person with curl) within the TTL share one read instead of each paying for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Expiring"]

T = TypeVar("T")


class Expiring(Generic[T]):
    """``load()``'s value, loaded again once ``ttl_seconds`` old (or after :meth:`clear`).

    One thread loads at a time; the others wait for its value rather than load it again."""

    def __init__(self, load: Callable[[], T], ttl_seconds: float) -> None:
        self._load = load
        self._ttl = ttl_seconds
        self._lock = threading.Lock()
        self._loaded: tuple[float, T] | None = None

    def get(self) -> T:
        """The value, loaded now if it is older than the TTL."""
        with self._lock:
            if self._loaded is not None and time.monotonic() - self._loaded[0] < self._ttl:
                return self._loaded[1]
            value = self._load()
            self._loaded = (time.monotonic(), value)
            return value

    def clear(self) -> None:
        """Load anew on the next :meth:`get` (the underlying data changed)."""
        with self._lock:
            self._loaded = None
