"""Connections a client holds open, or never finishes: the head timeout (slowloris), the keep-alive
timeout, the open-file limit raised at start, the cap that sheds idle connections so that new
clients are served; and bodies refused from their Content-Length before they are read.

Raw sockets opened by the test, against a Bastion of its own (SQLite: nothing here reaches the
database before the answer).
"""

from __future__ import annotations

import resource
import selectors
import socket
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.api.helpers import assert_error
from tests.conftest import Server, running_server

HEAD_TIMEOUT_MS = 1000
KEEP_ALIVE_MS = 500
CAP = 1500  # --max-connections


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """Started with the soft open-file limit at Linux's default 1024, which Bastion must raise."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 4096:
        pytest.skip(f"the hard open-file limit is {hard}: too low to hold 1,000 idle connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # inherited by the server started now
    try:
        context = running_server("sqlite", ["--header-timeout", str(HEAD_TIMEOUT_MS), "--keep-alive-timeout",
                                            str(KEEP_ALIVE_MS), "--max-body-bytes", "1000",
                                            "--max-upload-bytes", "1000", "--max-connections", str(CAP)])
        srv = context.__enter__()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), hard))  # the test opens 1,000 sockets
    try:
        yield srv
    finally:
        context.__exit__(None, None, None)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _address(server: Server) -> tuple[str, int]:
    port = int(server.url.rsplit(":", 1)[1].split("/", 1)[0])
    return "127.0.0.1", port


def _connect(server: Server) -> socket.socket:
    return socket.create_connection(_address(server), timeout=5)


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _served(server: Server) -> None:
    with server.client(master=True) as api:
        response = api.get("/health", timeout=3)
        assert response.status_code == 200, response.text
        assert api.get("/classes/Anything", timeout=3).json() == {"results": []}


def test_open_file_limit_is_raised(server: Server) -> None:
    limits = open(f"/proc/{server.process.pid}/limits").read()  # noqa: SIM115 - read once
    line = next(row for row in limits.splitlines() if row.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    assert soft == hard and int(soft) > 1024, line


def _closed_by_server(sockets: list[socket.socket]) -> list[socket.socket]:
    """The sockets whose server end closed (EOF), from one wait of 0.3 s."""
    with selectors.DefaultSelector() as selector:  # select() cannot wait on descriptors past 1023
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        ready = [key.fileobj for key, _ in selector.select(0.3)]
    return [sock for sock in sockets if sock in ready and sock.recv(1) == b""]


def test_thousand_idle_connections_leave_new_clients_served(server: Server) -> None:
    # More than the 1,024 descriptors of the default soft limit the server was started with.
    idle = [_connect(server) for _ in range(1100)]
    try:
        started = time.monotonic()
        _served(server)
        assert time.monotonic() - started < 3
        assert _closed_by_server(idle) == []  # under the cap, none was closed
    finally:
        for sock in idle:
            sock.close()


def test_connection_cap_closes_the_longest_idle(server: Server) -> None:
    started = time.monotonic()
    idle = [_connect(server) for _ in range(CAP + 100)]
    try:
        _served(server)
        # The first ones were closed to make room (the server's end: EOF), the last ones stay open.
        closed = _closed_by_server(idle)
        assert time.monotonic() - started < HEAD_TIMEOUT_MS / 1000  # closed by the cap, not the timeout
        assert idle[0] in closed and idle[-1] not in closed
        assert len(closed) >= 100
    finally:
        for sock in idle:
            sock.close()


def test_head_never_completed_is_answered_408_and_closed(server: Server) -> None:
    with _connect(server) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /parse/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        time.sleep(0.3)
        sock.sendall(b"a")  # a byte now and then does not keep it alive
        answer = _read_all(sock)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert orjson.loads(answer.split(b"\r\n\r\n", 1)[1]) == {"code": 124,
                                                             "error": "Request head not received in time."}
    assert HEAD_TIMEOUT_MS / 1000 - 0.1 < waited < HEAD_TIMEOUT_MS / 1000 + 1.5


def test_connection_that_sends_nothing_is_closed(server: Server) -> None:
    with _connect(server) as sock:
        started = time.monotonic()
        assert _read_all(sock) == b""
        assert time.monotonic() - started < HEAD_TIMEOUT_MS / 1000 + 1.5


def test_idle_keep_alive_connection_is_closed(server: Server) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /parse/health HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        answer = _read_all(sock)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert waited < KEEP_ALIVE_MS / 1000 + 1.0


@pytest.mark.parametrize(("path", "code", "message"), [
    ("/parse/classes/Big", 116, "The request body is too large."),
    ("/parse/functions/anything", 116, "The request body is too large."),
    ("/parse/users", 116, "The request body is too large."),
    ("/parse/files/big.txt", 130, "request entity too large"),
])
def test_body_refused_from_content_length_unread(server: Server, path: str, code: int, message: str) -> None:
    """A gigabyte announced and never sent: the answer comes at once, before any body."""
    with _connect(server) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nX-Parse-Application-Id: {server.app_id}\r\n"
                     f"X-Parse-Javascript-Key: {server.javascript_key}\r\nContent-Type: text/plain\r\n"
                     f"Content-Length: 1000000000\r\n\r\n".encode())
        sock.settimeout(2)
        answer = sock.recv(65536)
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 413 "), answer
    assert orjson.loads(body) == {"code": code, "error": message}


def test_chunked_body_stops_at_the_limit(server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(10):
            yield b"a" * 500
        yield b'"}'

    with server.client() as api:
        assert_error(api.post("/classes/Big", content=chunks()), 413, 116, "The request body is too large.")
        # The JS SDK's upload form (the keys in the JSON body) has the same refusal as any body.
        response = api.post("/files/a.txt", content=b"x" * 2000,
                            headers={"X-Parse-Application-Id": "", "Content-Type": "text/plain"})
        assert_error(response, 413, 130, "request entity too large")
        assert api.get("/health").status_code == 200  # the connection is still good
    assert httpx.get(server.url + "/health").status_code == 200
