"""Where batches go: the monitor's ``POST /v1/records`` (gzip, bearer token, timeout)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx

__all__ = ["HttpSink", "Outcome", "Sink"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one send: ``ok``, ``retry`` (try later) or ``reject`` (never accepted)."""

    kind: str
    detail: str = ""
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        """True when the monitor acknowledged the batch."""
        return self.kind == "ok"


OK = Outcome("ok")


class Sink(Protocol):
    """Delivers one gzip JSON batch; must not raise for ordinary failures."""

    def send(self, payload: bytes) -> Outcome:
        """Deliver ``payload`` and say what happened."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class HttpSink:
    """POSTs to ``{monitor}/v1/records`` with one keep-alive ``httpx.Client``."""

    def __init__(self, monitor_url: str, token: str | None = None, timeout: float = 10.0) -> None:
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self.url = monitor_url.rstrip("/") + "/v1/records"
        self.client = httpx.Client(
            headers=headers, timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0))
        )

    def send(self, payload: bytes) -> Outcome:
        """POST ``payload``; 2xx is ok, 400/413/422 reject, anything else retry."""
        try:
            response = self.client.post(self.url, content=payload)
        except httpx.HTTPError as exc:
            return Outcome("retry", f"{type(exc).__name__}: {exc}")
        if response.is_success:
            return OK
        detail = f"HTTP {response.status_code}: {response.text[:300]}"
        if response.status_code in (400, 413, 422):
            return Outcome("reject", detail)
        return Outcome("retry", detail, _retry_after(response))

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()
