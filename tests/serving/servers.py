"""Real HTTP servers on loopback for the serving tests: any ASGI app under uvicorn in a thread,
and a small upstream model app."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.procs import free_port


class ServerThread:
    """Runs ``app`` with uvicorn on 127.0.0.1 in a daemon thread; a context manager."""

    def __init__(self, app: Any, port: int = 0) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="auto"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def model_app(
    name: str, delay: float = 0.0, fail: bool = False, hold: threading.Event | None = None
) -> Starlette:
    """An upstream that predicts ``name`` for every row, after ``delay`` seconds and, with
    ``hold``, only once the test sets it (an upstream slow for as long as the test needs, on a
    machine of any speed)."""

    async def predict(request: Request) -> Response:
        if delay:
            await asyncio.sleep(delay)
        while hold is not None and not hold.is_set():
            await asyncio.sleep(0.005)
        if fail:
            return JSONResponse({"error": "model exploded"}, status_code=500)
        body = await request.json()
        rows = body.get("inputs", [])
        return JSONResponse([{"prediction": name, "probabilities": {name: 1.0}} for _ in rows])

    async def echo(request: Request) -> Response:
        body = await request.body()
        payload = {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": [[k.decode(), v.decode()] for k, v in request.scope["headers"]],
            "body": body.decode(),
        }
        return Response(
            json.dumps(payload), 418, headers={"x-upstream": name}, media_type="application/json"
        )

    async def stream(request: Request) -> Response:
        async def chunks() -> Any:
            for i in range(5):
                yield f"chunk-{i};".encode()
                await asyncio.sleep(0.01)

        return StreamingResponse(chunks(), media_type="text/plain")

    return Starlette(
        routes=[
            Route("/predict", predict, methods=["POST"]),
            Route("/echo/{rest:path}", echo, methods=["GET", "POST", "PUT"]),
            Route("/stream", stream),
        ]
    )
