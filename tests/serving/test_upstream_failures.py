"""Never twice, never a bare error: an upstream that fails in every way a real one does, behind
the real proxy on loopback. A prediction with side effects must never run twice, and every
answer the sidecar gives carries ``X-Request-ID`` and a JSON body."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from types import TracebackType

import httpx
import pytest

from tests.procs import free_port
from tests.serving.test_proxy import Proxy, single


class RawUpstream:
    """A real TCP server on loopback that reads each request whole, notes it, then does
    ``behave(connection)``: close without answering, or answer part of a body."""

    def __init__(self, behave: Callable[[socket.socket], None]) -> None:
        self.behave = behave
        self.requests: list[bytes] = []
        self.closing = False
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            if self.closing:
                connection.close()
                return
            with connection:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(body) < length:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                if data:
                    self.requests.append(head.split(b"\r\n")[0])
                    self.behave(connection)

    def __enter__(self) -> RawUpstream:
        self.thread.start()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.closing = True
        socket.create_connection(self.server.getsockname(), timeout=5).close()  # wake accept()
        self.thread.join(5)
        self.server.close()


def close_unanswered(connection: socket.socket) -> None:
    connection.shutdown(socket.SHUT_RDWR)


def half_a_body(connection: socket.socket) -> None:
    connection.sendall(
        b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n[{"predic'
    )


@pytest.fixture
def unanswering() -> Iterator[RawUpstream]:
    with RawUpstream(close_unanswered) as upstream:
        yield upstream


def assert_json_error(response: httpx.Response, status: int, request_id: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"] == request_id
    assert response.headers["content-type"] == "application/json"
    assert response.json()["request_id"] == request_id


def test_a_post_the_upstream_read_and_never_answered_is_not_sent_twice(
    unanswering: RawUpstream,
) -> None:
    with Proxy(single(unanswering.url)) as proxy:
        for i in range(3):
            response = httpx.post(
                f"{proxy.url}/predict",
                json={"inputs": [{"a": i}]},
                headers={"X-Request-ID": f"p{i}"},
            )
            assert_json_error(response, 502, f"p{i}")
            assert "closed the connection" in response.json()["error"]
        assert unanswering.requests == [b"POST /predict HTTP/1.1"] * 3
        assert (
            proxy.value(
                "driftloop_sidecar_upstream_errors_total", variant="champion", reason="protocol"
            )
            == 3
        )


def test_an_idempotent_get_may_be_sent_again_on_a_fresh_connection(
    unanswering: RawUpstream,
) -> None:
    with Proxy(single(unanswering.url)) as proxy:
        response = httpx.get(f"{proxy.url}/health", headers={"X-Request-ID": "g1"})
        assert_json_error(response, 502, "g1")
    # aiohttp repeats an idempotent method once when the connection drops; never more.
    assert unanswering.requests in ([b"GET /health HTTP/1.1"], [b"GET /health HTTP/1.1"] * 2)


def test_a_body_the_upstream_broke_off_gets_a_json_502_with_the_request_id() -> None:
    with RawUpstream(half_a_body) as upstream, Proxy(single(upstream.url)) as proxy:
        response = httpx.post(
            f"{proxy.url}/predict", json={"inputs": [{"a": 1}]}, headers={"X-Request-ID": "half"}
        )
        assert_json_error(response, 502, "half")
        assert "broke off" in response.json()["error"]
        assert upstream.requests == [b"POST /predict HTTP/1.1"]


def test_an_upstream_that_is_down_gets_a_json_502_with_the_request_id() -> None:
    with Proxy(single(f"http://127.0.0.1:{free_port()}")) as proxy:
        response = httpx.post(f"{proxy.url}/predict", json={}, headers={"X-Request-ID": "down"})
        assert_json_error(response, 502, "down")
        minted = httpx.get(f"{proxy.url}/anything")
        assert minted.status_code == 502
        assert minted.json()["request_id"] == minted.headers["x-request-id"]


def raw_request(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    return data


def test_options_asterisk_is_answered_by_the_sidecar_in_json(unanswering: RawUpstream) -> None:
    with Proxy(single(unanswering.url)) as proxy:
        answer = raw_request(
            proxy.url,
            b"OPTIONS * HTTP/1.1\r\nHost: x\r\nX-Request-ID: star\r\nConnection: close\r\n\r\n",
        )
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    assert lines[0].startswith(b"http/1.1 200")
    assert b"x-request-id: star" in lines
    assert b"content-type: application/json" in lines
    assert b'"request_id": "star"' in body
    assert unanswering.requests == []  # nothing was forwarded


class KeepAliveUpstream(RawUpstream):
    """Answers every request on a connection (keep-alive), counting connections accepted."""

    def __init__(self) -> None:
        super().__init__(lambda _: None)
        self.connections = 0

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            if self.closing:
                connection.close()
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            data = b""
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                length = next(
                    (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                     if line.lower().startswith(b"content-length:")),
                    0,
                )  # fmt: skip
                while len(data) < length:
                    data += connection.recv(65536)
                data = data[length:]
                self.requests.append(head.split(b"\r\n")[0])
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: 2\r\n\r\n[]"
                )


def test_sequential_requests_reuse_one_upstream_connection() -> None:
    with KeepAliveUpstream() as upstream, Proxy(single(upstream.url)) as proxy:
        with httpx.Client() as client:
            for i in range(20):
                response = client.post(f"{proxy.url}/predict", json={"inputs": [{"a": i}]})
                assert response.status_code == 200
                assert response.json() == []
        assert len(upstream.requests) == 20
        assert upstream.connections == 1


def test_concurrent_requests_wait_for_a_connection_beyond_the_limit() -> None:
    import asyncio

    from driftloop.serving.http1 import Pool

    async def burst(url: str) -> list[bytes]:
        pool = Pool(url, max_connections=1, connect_timeout=2.0, read_timeout=10.0)

        async def one(i: int) -> bytes:
            response = await pool.request("POST", b"/p", [], b'{"i": %d}' % i)
            try:
                return await response.read()
            finally:
                response.release()

        try:
            return await asyncio.gather(*(one(i) for i in range(5)))
        finally:
            await pool.aclose()

    with KeepAliveUpstream() as upstream:
        assert asyncio.run(burst(upstream.url)) == [b"[]"] * 5
        assert upstream.connections == 1
