"""A /v1 request whose body never arrives is answered 408, not waited on."""

import json
import socket
import time

import pytest

BODY = b'{"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}]}'


@pytest.fixture
def short_timeout(settings):
    settings.SWITCHBOARD_BODY_READ_TIMEOUT_SECONDS = 0.5


def head(secret: str, length: int) -> bytes:
    return (
        "POST /v1/chat/completions HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        "Content-Type: application/json\r\n"
        f"Authorization: Bearer {secret}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def answer(sock: socket.socket) -> tuple[str, dict, bytes]:
    """Read one whole HTTP response: its status line, headers and body."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed without an answer: {received!r}"
        received += chunk
    top, _, body = received.partition(b"\r\n\r\n")
    status, *lines = top.decode().split("\r\n")
    headers = {
        name.lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines)
    }
    chunked = headers.get("transfer-encoding") == "chunked"
    while (
        not body.endswith(b"0\r\n\r\n")
        if chunked
        else len(body) < int(headers.get("content-length", 0))
    ):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    if chunked:
        whole = b""
        while True:
            size, _, body = body.partition(b"\r\n")
            if not int(size, 16):
                break
            whole, body = whole + body[: int(size, 16)], body[int(size, 16) + 2 :]
        body = whole
    return status, headers, body


def connect(relay_server) -> socket.socket:
    sock = socket.create_connection((relay_server.host, relay_server.port))
    sock.settimeout(5)
    return sock


def test_a_body_that_never_arrives_gets_a_408(
    relay_server, relay, alice, short_timeout
):
    with connect(relay_server) as sock:
        sock.sendall(head(alice.secret, len(BODY)))
        started = time.monotonic()
        status, headers, body = answer(sock)
        waited = time.monotonic() - started
    assert status.startswith("HTTP/1.1 408"), status
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "request_timeout"
    assert headers["connection"] == "close"
    assert 0.4 < waited < 4


def test_a_body_cut_halfway_gets_a_408(relay_server, relay, alice, short_timeout):
    with connect(relay_server) as sock:
        sock.sendall(head(alice.secret, len(BODY)) + BODY[:20])
        status, _, _ = answer(sock)
    assert status.startswith("HTTP/1.1 408"), status


def test_a_slow_body_within_the_limit_is_served(
    relay_server, relay, alice, channel, short_timeout
):
    with connect(relay_server) as sock:
        sock.sendall(head(alice.secret, len(BODY)) + BODY[:20])
        time.sleep(0.2)
        sock.sendall(BODY[20:])
        status, _, body = answer(sock)
    assert status.startswith("HTTP/1.1 200"), (status, body)
