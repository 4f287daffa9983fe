"""Talking to an upstream Bento: one keep-alive ``aiohttp`` session per upstream, raw bodies.

aiohttp rather than httpx: measured on this hardware at 32 concurrent clients, httpx's connection
pool (it scans every connection on each request, under anyio locks) capped the proxy near 300
req/s where aiohttp's C-parsed client passed 2,000 req/s (see docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from yarl import URL

__all__ = ["make_session", "send_upstream", "target_url"]

_RETRYABLE = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


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
    """Send one request; the caller reads and releases the response."""
    pairs = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]
    target = URL(url, encoded=True)
    try:
        return await session.request(
            method, target, headers=pairs, data=body or stream, allow_redirects=False
        )
    except _RETRYABLE as exc:
        if stream is not None or isinstance(exc, aiohttp.ClientConnectorError):
            raise
        # A pooled connection the upstream had just closed: nothing was processed, so one
        # retry on a fresh connection is safe (as Go's and urllib3's pools do).
        return await session.request(
            method, target, headers=pairs, data=body or None, allow_redirects=False
        )
