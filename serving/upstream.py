"""Talking to an upstream Bento: one keep-alive ``aiohttp`` session per upstream, raw bodies.

aiohttp rather than httpx: measured on this hardware at 32 concurrent clients, httpx's connection
pool (it scans every connection on each request, under anyio locks) capped the proxy near 300
req/s where aiohttp's C-parsed client passed 2,000 req/s (see docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from yarl import URL

__all__ = ["IDEMPOTENT", "AiohttpResponse", "make_session", "send_upstream", "target_url"]

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
"""Methods aiohttp sends again after the upstream dropped the connection (never a POST)."""


def make_session(
    max_connections: int, connect_timeout: float, read_timeout: float
) -> aiohttp.ClientSession:
    """The one keep-alive session of an upstream: no added headers, no decompression."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=max_connections,
            # Below the 5 s keep-alive of uvicorn (and so BentoML): we close idle connections
            # before the upstream does, instead of racing it.
            keepalive_timeout=4.0,
        ),
        timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        ),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        trust_env=False,
    )


def target_url(base: str, raw_path: bytes, query: bytes) -> str:
    """``base`` + the request's raw path and query string, unchanged."""
    url = base + raw_path.decode("latin-1")
    if query:
        url += "?" + query.decode("latin-1")
    return url


async def send_upstream(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes | None,
    stream: AsyncIterator[bytes] | None = None,
) -> aiohttp.ClientResponse:
    """Send one request; the caller reads and releases the response.

    Sent again only when it provably never left (the connection could not be made); aiohttp
    repeats an idempotent method (RFC 9110 section 9.2.2, :data:`IDEMPOTENT`) once when the
    upstream drops the connection. Once bytes went out a ``POST`` may have run, so it is never
    sent twice.
    """
    pairs = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]
    target = URL(url, encoded=True)
    try:
        return await session.request(
            method, target, headers=pairs, data=body or stream, allow_redirects=False
        )
    except aiohttp.ClientConnectorError:
        if stream is not None:
            raise
        # Not connected, so nothing was sent: one more try (an upstream that is restarting).
        # Anything else is never retried here: aiohttp itself sends an idempotent method
        # once more when a connection drops, and a POST must not run twice.
    return await session.request(
        method, target, headers=pairs, data=body or None, allow_redirects=False
    )


class AiohttpResponse:
    """An aiohttp answer with the interface of :class:`driftloop.serving.http1.Response`
    (upstreams the raw HTTP/1.1 client does not speak: ``https://``)."""

    __slots__ = ("_response", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers = list(response.raw_headers)

    async def read(self) -> bytes:
        """The whole body."""
        return await self._response.read()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives."""
        async for chunk in self._response.content.iter_any():
            yield chunk

    def release(self) -> None:
        """Give the connection back."""
        self._response.release()
