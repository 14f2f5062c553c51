"""
Run Switchboard as production runs it, in child processes of the test: a
fresh PostgreSQL database, a Redis server of the test's own, DEBUG off with
throwaway keys, and the fake upstream (in the test's process) to relay to.

Every process a test starts is stopped when it ends, passing or failing.
"""

import contextlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
HOST = "127.0.0.1"
MODEL = "gpt-4.1-mini"

# Environment that would point the children at other services or change how
# they behave: they get only what the harness sets.
_DROPPED_PREFIXES = ("SWITCHBOARD_", "STRIPE_", "CELERY_", "PROMETHEUS_")
_DROPPED_NAMES = ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "PORT")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_until(check, what: str, timeout: float, alive=None) -> None:
    """Poll `check` until true; fail after `timeout` or once `alive` is false."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError):
            if check():
                return
        if alive is not None and not alive():
            pytest.fail(f"{what}: the process exited first")
        if time.monotonic() >= deadline:
            pytest.fail(f"{what}: not after {timeout:.0f}s")
        time.sleep(0.1)


def port_accepts(port: int) -> bool:
    with socket.create_connection((HOST, port), timeout=1):
        return True


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def stop(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM `proc`'s process group, SIGKILL it if it outstays `timeout`."""
    if proc.poll() is None:
        kill_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    kill_group(proc.pid)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


# -- services -------------------------------------------------------------------


def postgres_server() -> str:
    """Return the URL of the suite's PostgreSQL server, without a database."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")
    return url.rsplit("/", 1)[0]


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """Create an empty database on the suite's server; drop it afterwards."""
    server = postgres_server()
    base = os.environ["DATABASE_URL"].rsplit("/", 1)[1].split("?")[0]
    name = f"{base}_prod_{uuid.uuid4().hex[:8]}"

    def admin(statement: sql.Composed) -> None:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(statement)

    admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{server}/{name}"
    finally:
        admin(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )


@contextlib.contextmanager
def private_redis(workdir: Path) -> Iterator[str]:
    """Serve a Redis of the test's own on a free loopback port."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed")
        pytest.skip("needs redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--bind", HOST, "--port", str(port), "--save", ""]
        + ["--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: port_accepts(port), "redis-server", 10, lambda: not proc.poll()
        )
        yield f"redis://{HOST}:{port}/0"
    finally:
        stop(proc, 5)


def production_env(database_url: str, redis_url: str, workdir: Path, **extra) -> dict:
    """The environment of a production process, with throwaway keys."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _DROPPED_NAMES and not key.startswith(_DROPPED_PREFIXES)
    }
    metrics = workdir / "prometheus"
    metrics.mkdir()
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SWITCHBOARD_DEBUG="0",
        SWITCHBOARD_SECRET_KEY=secrets.token_urlsafe(48),
        SWITCHBOARD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        SWITCHBOARD_ALLOWED_HOSTS=f"{HOST},localhost",
        # No SMTP server here: emails go to the log, which production
        # allows only when asked for by name.
        SWITCHBOARD_EMAIL_BACKEND="console",
        PROMETHEUS_MULTIPROC_DIR=str(metrics),
        PYTHONUNBUFFERED="1",
        # The Procfile's commands are the virtualenv's.
        PATH=f"{Path(PYTHON).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        **extra,
    )
    return env


def run_checked(argv: list[str], env: dict, timeout: float = 60) -> str:
    done = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


def seed(env: dict, upstream_url: str) -> str:
    """Fund a tenant, give it an API key and a channel to the fake; return
    the key (bench/fixtures.py, with the relay's environment)."""
    out = run_checked(
        [PYTHON, "bench/fixtures.py", "seed", upstream_url, MODEL], env
    ).splitlines()[-1]
    return json.loads(out)["api_key"]


# -- what the relay recorded ------------------------------------------------------


@dataclass
class Books:
    usage: dict[str, int]  # request id -> usage records
    statuses: dict[str, str]  # request id -> status of its (last) record
    charged: dict[str, int]  # request id -> nano-USD charged
    ledger: dict[str, int]  # request id -> usage ledger rows
    holds: int
    held: int


def books(database_url: str) -> Books:
    with psycopg.connect(database_url) as conn:
        records = conn.execute(
            "SELECT request_id, status, charged FROM relay_usagerecord"
        ).fetchall()
        ledger = conn.execute(
            "SELECT reference FROM billing_ledgerentry WHERE kind = 'usage'"
        ).fetchall()
        holds = conn.execute("SELECT count(*) FROM billing_hold").fetchone()[0]
        held = conn.execute("SELECT coalesce(sum(held), 0) FROM billing_wallet")
        held = held.fetchone()[0]
    usage: dict[str, int] = {}
    for request_id, *_ in records:
        usage[request_id] = usage.get(request_id, 0) + 1
    rows: dict[str, int] = {}
    for (reference,) in ledger:
        request_id = reference.removeprefix("usage:")
        rows[request_id] = rows.get(request_id, 0) + 1
    return Books(
        usage=usage,
        statuses={request_id: status for request_id, status, _ in records},
        charged={request_id: charged for request_id, _, charged in records},
        ledger=rows,
        holds=holds,
        held=held,
    )


# -- HTTP -------------------------------------------------------------------------


def chat_body(*, stream: bool = False, max_tokens: int = 16) -> bytes:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_tokens": max_tokens,
    }
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


def headers(key: str) -> dict:
    return {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}


@dataclass
class Answer:
    status: int
    request_id: str
    body: bytes = field(repr=False)


def chat(conn: http.client.HTTPConnection, key: str, **options) -> Answer:
    """POST a chat completion on `conn` (kept alive) and read all of it."""
    conn.request("POST", "/v1/chat/completions", chat_body(**options), headers(key))
    response = conn.getresponse()
    body = response.read()
    return Answer(response.status, response.getheader("x-request-id", ""), body)


# -- which process holds a connection ----------------------------------------------


def _tcp_inode(local_port: int, remote_port: int) -> str | None:
    """Return the inode of the established socket local_port <- remote_port."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, remote, state = fields[1], fields[2], fields[3]
                if (
                    state == "01"
                    and int(local.rsplit(":", 1)[1], 16) == local_port
                    and int(remote.rsplit(":", 1)[1], 16) == remote_port
                ):
                    return fields[9]
    return None


def socket_owner(pids: list[int], inode: str) -> int | None:
    target = f"socket:[{inode}]"
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, PermissionError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        return pid
    return None


def connection_owner(
    conn: http.client.HTTPConnection, server_port: int, pids: list[int]
) -> int | None:
    """Return which of `pids` accepted `conn` (its server side's socket)."""
    client_port = conn.sock.getsockname()[1]
    inode = _tcp_inode(server_port, client_port)
    return None if inode is None else socket_owner(pids, inode)


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def uvicorn_workers(master: int) -> list[int]:
    """The worker processes of a `uvicorn --workers N` master."""
    return sorted(pid for pid in children(master) if "spawn_main" in cmdline(pid))


def healthz_pid(conn: http.client.HTTPConnection) -> int:
    """The pid /healthz reports on `conn`."""
    conn.request("GET", "/healthz")
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200, body
    answer = json.loads(body)
    assert answer["status"] == "ok", answer
    return answer["pid"]


def honcho_pids(log: str) -> dict[str, int]:
    """The pids honcho reports for its processes ("web.1 started (pid=N)")."""
    return {
        name: int(pid)
        for name, pid in re.findall(r"(\w+\.\d+) started \(pid=(\d+)\)", log)
    }
