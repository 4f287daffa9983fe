"""The answer of the monitor while its database is unavailable: 503 with a delay to retry after.

Readiness (``/readyz``) and every endpoint that needs the database answer alike, so a load
balancer takes the replica out of rotation and a sender (the sidecar's shipper) keeps the batch
and retries it, here or on another replica, after ``Retry-After`` seconds. Nothing is
acknowledged that was not committed; the replica recovers by itself when the database is back
(the pool pings a connection before handing it out and reconnects).
"""

from __future__ import annotations

from fastapi.responses import JSONResponse

__all__ = ["RETRY_AFTER_SECONDS", "unavailable_response"]

RETRY_AFTER_SECONDS = 5
"""What ``Retry-After`` says on a 503."""


def unavailable_response(cause: str, **extra: object) -> JSONResponse:
    """A 503 whose ``detail`` names ``cause`` (the driver's error class, never its message: it
    can hold the server's address or a statement), with ``extra`` fields and ``Retry-After``."""
    return JSONResponse(
        {"detail": f"database unavailable ({cause}); retry later", **extra},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
