"""A small closed-loop HTTP/1.1 load client over raw asyncio streams (keep-alive).

Used by ``bench/sidecar.py``: each of N clients sends the same POST back to back and records
the latency of every answer. Raw sockets keep the client's own overhead (which shares the CPU
with the servers under test) small and equal for every target.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Result:
    """Latencies (seconds) of every answered request and the wall time of the run."""

    latencies: list[float]
    seconds: float
    errors: int

    def quantile(self, q: float) -> float:
        values = sorted(self.latencies)
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


async def _client(host: str, port: int, request: bytes, stop: float, out: list[float]) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    try:
        while time.perf_counter() < stop:
            start = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if b" 200 " in status_line:
                out.append(time.perf_counter() - start)
            else:
                errors += 1
    finally:
        writer.close()
    return errors


async def _run(url: str, body: bytes, clients: int, seconds: float, warmup: float) -> Result:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    if warmup:
        await asyncio.gather(
            *[
                _client(host, port, request, time.perf_counter() + warmup, [])
                for _ in range(clients)
            ]
        )
    latencies: list[float] = []
    begin = time.perf_counter()
    errors = await asyncio.gather(
        *[_client(host, port, request, begin + seconds, latencies) for _ in range(clients)]
    )
    return Result(latencies, time.perf_counter() - begin, sum(errors))


def run(url: str, body: bytes, clients: int, seconds: float, warmup: float = 1.0) -> Result:
    """Hammer ``url`` with ``clients`` keep-alive connections for ``seconds``."""
    try:
        import uvloop

        return uvloop.run(_run(url, body, clients, seconds, warmup))
    except ImportError:
        return asyncio.run(_run(url, body, clients, seconds, warmup))
