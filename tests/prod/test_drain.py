"""
SIGTERM drains a Switchboard process: it stops accepting connections at
once, lets the streams in flight finish within its grace period, cuts and
settles those that outlast it, and exits within a bound. Every stream that
started is charged once and leaves no hold.

The process is the Procfile's web command with one worker (uvicorn, uvloop,
httptools, no access log, --timeout-graceful-shutdown), against PostgreSQL
and a Redis of the test's own, relaying to the fake upstream pacing its
streams a word every CHUNK_DELAY seconds.
"""

import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest

from tests.prod.harness import (
    HOST,
    PYTHON,
    ROOT,
    books,
    chat_body,
    free_port,
    fresh_database,
    headers,
    port_accepts,
    private_redis,
    production_env,
    run_checked,
    seed,
    stop,
    wait_until,
)

pytestmark = pytest.mark.postgres

GRACE_SECONDS = 3
# What the process may take after its grace: cancelling the streams cut,
# settling them and closing its pools (README: "Production topology").
EXIT_MARGIN_SECONDS = 2
CHUNK_DELAY = 0.1
# A short stream ends well within the grace, a long one far beyond it.
SHORT_WORDS, LONG_WORDS = 12, 300
STREAMS_EACH = 3


@dataclass
class Stream:
    max_tokens: int
    request_id: str = ""
    status: int = 0
    started: threading.Event = field(default_factory=threading.Event)
    body: bytearray = field(default_factory=bytearray)
    error: str = ""
    ended_at: float = 0.0

    @property
    def complete(self) -> bool:
        return self.body.rstrip().endswith(b"data: [DONE]")


def _read(stream: Stream, port: int, key: str) -> None:
    try:
        with (
            httpx.Client(trust_env=False, timeout=30) as client,
            client.stream(
                "POST",
                f"http://{HOST}:{port}/v1/chat/completions",
                content=chat_body(stream=True, max_tokens=stream.max_tokens),
                headers=headers(key),
            ) as response,
        ):
            stream.status = response.status_code
            stream.request_id = response.headers.get("x-request-id", "")
            for chunk in response.iter_raw():
                stream.body += chunk
                stream.started.set()
    except httpx.HTTPError as exc:
        stream.error = repr(exc)
    finally:
        stream.ended_at = time.monotonic()
        stream.started.set()


def _web_command() -> str:
    """The Procfile's web command, as production runs it."""
    procfile = (ROOT / "Procfile").read_text()
    return re.search(r"^web:\s*(.+)$", procfile, re.M).group(1)


def _refused(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_sigterm_drains_streams_settles_them_and_exits_in_bound(fake, tmp_path):
    words = " ".join(f"w{n}" for n in range(LONG_WORDS))
    fake.scenario("slow", reply=words, chunk_delay=CHUNK_DELAY)
    with fresh_database() as database_url, private_redis(tmp_path) as redis_url:
        port = free_port()
        env = production_env(
            database_url,
            redis_url,
            tmp_path,
            HOST=HOST,
            PORT=str(port),
            WEB_CONCURRENCY="1",
            SWITCHBOARD_GRACE_SECONDS=str(GRACE_SECONDS),
        )
        run_checked([PYTHON, "manage.py", "migrate", "--no-input", "-v0"], env)
        key = seed(env, fake.url("slow"))
        log_path = tmp_path / "web.log"
        with open(log_path, "wb") as log:
            web = subprocess.Popen(
                ["/bin/sh", "-c", _web_command()],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _drain(web, port, key, database_url)
        finally:
            stop(web, 5)
            print(log_path.read_text(errors="replace")[-6000:])


def _drain(web, port, key, database_url):
    wait_until(lambda: port_accepts(port), "uvicorn", 30, lambda: web.poll() is None)
    streams = [Stream(SHORT_WORDS) for _ in range(STREAMS_EACH)]
    streams += [Stream(LONG_WORDS) for _ in range(STREAMS_EACH)]
    readers = [
        threading.Thread(target=_read, args=(s, port, key), daemon=True)
        for s in streams
    ]
    for reader in readers:
        reader.start()
    for stream in streams:
        assert stream.started.wait(10), "a stream never started"
    assert all(s.status == 200 and s.request_id for s in streams), streams

    signalled = time.monotonic()
    web.send_signal(signal.SIGTERM)

    # Refused at once, while the streams are still running.
    wait_until(lambda: _refused(port), "refusing connections", 1)
    assert not any(s.ended_at for s in streams[STREAMS_EACH:])

    exit_code = web.wait(GRACE_SECONDS + EXIT_MARGIN_SECONDS + 5)
    took = time.monotonic() - signalled
    for reader in readers:
        reader.join(5)
    # uvicorn re-raises the signal it shut down for once it is done, so a
    # clean drain ends "killed by SIGTERM", which systemd counts as success.
    assert exit_code in (0, -signal.SIGTERM)
    assert took <= GRACE_SECONDS + EXIT_MARGIN_SECONDS, took

    short, long = streams[:STREAMS_EACH], streams[STREAMS_EACH:]
    # The short streams finished whole; the long ones were cut at the grace.
    assert all(s.complete and not s.error for s in short), short
    assert not any(s.complete for s in long), long
    assert all(s.ended_at - signalled >= GRACE_SECONDS - 0.5 for s in long)

    recorded = books(database_url)
    for stream in streams:
        assert recorded.usage.get(stream.request_id) == 1, stream.request_id
        assert recorded.ledger.get(stream.request_id) == 1, stream.request_id
        assert recorded.charged[stream.request_id] > 0
    assert {recorded.statuses[s.request_id] for s in short} == {"ok"}
    # A cut stream is charged for what it produced before the cut.
    assert min(recorded.charged[s.request_id] for s in long) > max(
        recorded.charged[s.request_id] for s in short
    )
    assert recorded.holds == 0 and recorded.held == 0
