"""Request bodies with size limits and gzip, so a sender learns of a bad body with a 4xx."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response, status
from fastapi.routing import APIRoute


async def read_limited(request: Request, limit: int) -> bytes:
    """Read the raw body, refusing with 413 once it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(f"body of {declared} bytes is over the limit of {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def gunzip_limited(data: bytes, limit: int) -> bytes:
    """Decompress a gzip body, refusing with 413 past ``limit`` bytes (gzip bombs)."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, detail=f"body is not valid gzip: {exc}"
        ) from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise _too_large(f"decompressed body is over the limit of {limit} bytes")
    return out


def _too_large(message: str) -> HTTPException:
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=message)


class LimitedRequest(Request):
    """A request whose body is size-limited and transparently gunzipped."""

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            limits = self.app.state.driftloop.settings.ingest
            raw = await read_limited(self, limits.max_body_bytes)
            if self.headers.get("content-encoding", "").lower() == "gzip":
                raw = gunzip_limited(raw, limits.max_decompressed_bytes)
            self._body = raw
        return self._body


class LimitedRoute(APIRoute):
    """A route that reads its body through :class:`LimitedRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def limited(request: Request) -> Response:
            return await handler(LimitedRequest(request.scope, request.receive))

        return limited
