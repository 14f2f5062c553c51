"""Switchboard served by a uvicorn process of its own, with its own environment."""

import contextlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 30


@dataclass
class Process:
    url: str
    pid: int
    log: Path

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def switchboard_process(tmp_path: Path, **env: str):
    """Serve Switchboard with uvicorn in a child process (environment:
    this one's, debug mode, and `env`) until the block ends."""
    port = free_port()
    log = tmp_path / f"switchboard-{port}.log"
    environment = {**os.environ, "SWITCHBOARD_DEBUG": "1", **env}
    with log.open("wb") as out:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
            ],
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if child.poll() is not None:
                raise AssertionError(f"switchboard exited:\n{log.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"switchboard did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield Process(url=url, pid=child.pid, log=log)
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
