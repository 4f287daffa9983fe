"""The sidecar's client to its upstreams: HTTP/1.1 keep-alive connections on raw asyncio
protocols, responses parsed by ``httptools`` (llhttp, the parser uvicorn uses).

Why not aiohttp: on the prediction path, aiohttp's client (request objects, timers, stream
readers, header multidicts) cost the sidecar about as much CPU per request as the whole bare
app behind it; this client does one ``write`` per request and hands raw header pairs through.

**Never twice.** A request is sent again only when it provably never left: the connection could
not be made. When a reused keep-alive connection turns out closed before any byte of an answer,
an idempotent method (RFC 9110 section 9.2.2) is sent once more on a fresh connection; a
``POST`` never is, since the upstream may have run it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httptools

__all__ = [
    "IDEMPOTENT",
    "ConnectFailed",
    "Disconnected",
    "PayloadBroken",
    "Pool",
    "Response",
    "UpstreamError",
    "UpstreamTimeout",
]

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
"""Methods sent again when a reused connection was closed before answering."""

_KEEPALIVE = 4.0  # below uvicorn's (and so BentoML's) 5 s: we close idle ones first
_HIGH_WATER = 1 << 20  # response bytes buffered before the upstream is paused


class UpstreamError(Exception):
    """The upstream could not be asked or did not answer completely."""


class ConnectFailed(UpstreamError):
    """No connection could be made: the request was not sent."""


class Disconnected(UpstreamError):
    """The upstream closed the connection without answering."""


class PayloadBroken(UpstreamError):
    """The upstream broke off (or garbled) its answer."""


class UpstreamTimeout(UpstreamError, TimeoutError):
    """The upstream did not connect or answer in time."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.used = False  # answered a request already (a closed reuse may be retried)
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._head: asyncio.Future[None] | None = None
        self._body_waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.error: UpstreamError | None = None
        self.got_bytes = False
        self.head_only = False
        self.paused = False
        self.eof_body = False  # no length, not chunked: the body ends when the connection does
        self.keep_alive = False
        self.deadline = 0.0

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # an upgrade is not proxied
            self._fail(PayloadBroken("the upstream switched protocols"))
        except httptools.HttpParserError as exc:
            if self.head_only and self.status and self._head is None:
                return  # a HEAD answer's announced body never comes: nothing to parse
            self._fail(PayloadBroken(f"unparseable answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.eof_body and self.status and not self.complete and self.error is None:
            self.complete = True
            self._wake_body()
        if not self.complete:
            if self.status:
                self._fail(PayloadBroken("the upstream closed the connection mid-answer"))
            else:
                self._fail(Disconnected("the upstream closed the connection unanswered"))
        self._wake_drain()

    def pause_writing(self) -> None:
        self._drain = self.loop.create_future()

    def resume_writing(self) -> None:
        self._wake_drain()

    def _wake_drain(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None

    async def drain(self) -> None:
        """Wait until the transport takes more (request bodies streamed upstream)."""
        if self._drain is not None:
            await self._drain
        if self.closed:
            raise Disconnected("the upstream closed the connection while the request was sent")

    # -- httptools callbacks ----------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        if self.status < 200:  # 1xx interim answers are not passed on
            self.status = 0
            self.headers = []
            return
        if self.head_only:
            self.complete = True
        elif self.status not in (204, 304):
            names = {n.lower() for n, _ in self.headers}
            self.eof_body = b"content-length" not in names and b"transfer-encoding" not in names
        head = self._head
        if head is not None and not head.done():
            head.set_result(None)
        self._head = None

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake_body()

    def on_message_complete(self) -> None:
        if self.status:
            self.keep_alive = self._parser.should_keep_alive()  # reset once the message ends
            self.complete = True
            self._wake_body()

    def _wake_body(self) -> None:
        waiter = self._body_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._body_waiter = None

    def _fail(self, error: UpstreamError) -> None:
        if self.error is None:
            self.error = error
        for waiter in (self._head, self._body_waiter):
            if waiter is not None and not waiter.done():
                waiter.set_exception(error)
        self._head = self._body_waiter = None
        if self.transport is not None and not self.closed:
            self.transport.close()
            self.closed = True

    # -- used by Pool and Response ----------------------------------------------------------
    def reset(self, head_only: bool) -> asyncio.Future[None]:
        self.status = 0
        self.headers = []
        self.chunks = deque()
        self.buffered = 0
        self.complete = False
        self.error = None
        self.got_bytes = False
        self.head_only = head_only
        self.eof_body = False
        self.keep_alive = False
        self._parser = httptools.HttpResponseParser(self)
        future: asyncio.Future[None] = self.loop.create_future()
        self._head = future
        return future

    async def more(self, timeout: float) -> None:
        """Wait for more of the body (or its end)."""
        if self.error is not None:
            raise self.error
        waiter: asyncio.Future[None] = self.loop.create_future()
        self._body_waiter = waiter
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        timer = self.loop.call_later(timeout, _expire, waiter, "the upstream stalled mid-answer")
        try:
            await waiter
        finally:
            timer.cancel()

    def take(self) -> bytes:
        chunks = self.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        return data

    def reusable(self) -> bool:
        return (
            self.complete
            and not self.closed
            and not self.head_only
            and self.error is None
            and self.keep_alive
        )


def _expire(future: asyncio.Future[None], message: str) -> None:
    if not future.done():
        future.set_exception(UpstreamTimeout(message))


class Response:
    """An upstream's answer: status and raw headers at once, the body read or streamed."""

    __slots__ = ("_conn", "_pool", "_released", "headers", "status")

    def __init__(self, pool: Pool, conn: _Connection) -> None:
        self._released = False
        self._pool = pool
        self._conn = conn
        self.status = conn.status
        self.headers = conn.headers  # raw (name, value) pairs as the upstream sent them

    async def read(self) -> bytes:
        """The whole body."""
        conn = self._conn
        parts: list[bytes] = []
        while not conn.complete:
            await conn.more(self._pool.read_timeout)
            if conn.chunks:
                parts.append(conn.take())
        if conn.chunks:
            parts.append(conn.take())
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives."""
        conn = self._conn
        while True:
            if conn.chunks:
                yield conn.take()
            elif conn.complete:
                return
            else:
                await conn.more(self._pool.read_timeout)

    def release(self) -> None:
        """Give the connection back for reuse (or close it when it cannot be reused); once."""
        if not self._released:
            self._released = True
            self._pool.release(self._conn)


class Pool:
    """Keep-alive connections to one upstream base URL (``http://host:port``)."""

    def __init__(
        self, base_url: str, max_connections: int, connect_timeout: float, read_timeout: float
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream {base_url!r}: only http://host[:port] is supported")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/").encode()
        self.host_header = parts.netloc.encode()
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._idle: list[_Connection] = []
        self._busy: set[_Connection] = set()  # waiting for an answer's head
        self._watchdog: asyncio.TimerHandle | None = None
        self._tick = min(1.0, max(read_timeout / 4, 0.01))
        self._active = 0  # requests holding a connection slot
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def request(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | None,
        stream: AsyncIterator[bytes] | None = None,
    ) -> Response:
        """Send one request (``target``: raw path and query); the caller reads and releases
        the :class:`Response`."""
        head = self._head(method, target, headers, body, stream)
        if self._active < self.max_connections:  # released with the response (release())
            self._active += 1
        else:
            await self._wait_for_slot()
        try:
            conn = self._idle_connection()
            reused = conn is not None
            if conn is None:
                conn = await self._connect()
            try:
                return await self._exchange(conn, method, head, body, stream)
            except Disconnected:
                # A reused connection the upstream had closed: only an idempotent request
                # without a streamed body goes again, on a fresh connection.
                if not reused or conn.got_bytes or stream is not None or method not in IDEMPOTENT:
                    raise
            conn = await self._connect()
            return await self._exchange(conn, method, head, body, None)
        except BaseException:
            self._free_slot()
            raise

    async def _wait_for_slot(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # a releasing request hands its slot over
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._free_slot()
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def _free_slot(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._active -= 1

    def _head(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | None,
        stream: AsyncIterator[bytes] | None,
    ) -> bytes:
        lines = [b"%s %s%s HTTP/1.1\r\nhost: %s" % (method.encode(), self.prefix, target,
                                                   self.host_header)]  # fmt: skip
        for name, value in headers:
            lines.append(b"%s: %s" % (name, value))
        if stream is not None:
            lines.append(b"transfer-encoding: chunked")
        elif body or method in ("POST", "PUT", "PATCH"):
            lines.append(b"content-length: %d" % len(body or b""))
        lines.append(b"\r\n")
        return b"\r\n".join(lines)

    def _idle_connection(self) -> _Connection | None:
        idle = self._idle
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < _KEEPALIVE:
                return conn
            self._close(conn)
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop), self.host, self.port
                )
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"no connection to {self.host}:{self.port} in {self.connect_timeout} s"
            ) from exc
        except OSError as exc:
            raise ConnectFailed(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        return conn

    async def _exchange(
        self,
        conn: _Connection,
        method: str,
        head: bytes,
        body: bytes | None,
        stream: AsyncIterator[bytes] | None,
    ) -> Response:
        answered = conn.reset(head_only=method == "HEAD")
        transport = conn.transport
        assert transport is not None
        # One watchdog per pool checks deadlines (a timer per request cost ~5 us of CPU).
        conn.deadline = time.monotonic() + self.read_timeout
        self._busy.add(conn)
        if self._watchdog is None:
            self._watchdog = conn.loop.call_later(self._tick, self._check)
        try:
            if stream is None:
                transport.write(head + body if body else head)
            else:
                transport.write(head)
                async for chunk in stream:
                    if chunk:
                        transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        await conn.drain()
                transport.write(b"0\r\n\r\n")
            await answered
        except BaseException:
            self._close(conn)
            raise
        finally:
            self._busy.discard(conn)
        return Response(self, conn)

    def _check(self) -> None:
        """Fail the requests whose answer is overdue; run again while any is waiting."""
        now = time.monotonic()
        for conn in list(self._busy):
            if now > conn.deadline and conn._head is not None:
                _expire(conn._head, f"no answer in {self.read_timeout} s")
        busy = self._busy
        self._watchdog = (
            asyncio.get_running_loop().call_later(self._tick, self._check) if busy else None
        )

    def release(self, conn: _Connection) -> None:
        """Back to the idle list when reusable, else closed; frees a connection slot."""
        self._free_slot()
        if conn.reusable():
            conn.idle_since = time.monotonic()
            conn.used = True
            self._idle.append(conn)
        else:
            self._close(conn)

    def _close(self, conn: _Connection) -> None:
        if conn.transport is not None and not conn.closed:
            conn.transport.close()
        conn.closed = True

    async def aclose(self) -> None:
        """Close every idle connection (and stop the watchdog)."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for conn in self._idle:
            self._close(conn)
        self._idle.clear()
