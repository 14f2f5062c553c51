"""
The production topology (Procfile, deploy/prod.sh, `make prod`), started as
an operator would: honcho runs several uvicorn workers, a Celery worker and
Celery beat against PostgreSQL and Redis, DEBUG off. Requests reach every
worker and are metered; beat's periodic tasks run on the worker.
"""

import contextlib
import http.client
import re
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.prod.harness import (
    HOST,
    ROOT,
    books,
    chat,
    connection_owner,
    free_port,
    fresh_database,
    healthz_pid,
    honcho_pids,
    kill_group,
    port_accepts,
    private_redis,
    production_env,
    seed,
    uvicorn_workers,
    wait_until,
)

pytestmark = pytest.mark.postgres

WORKERS = 3
# The whole test, services included, stays within this.
BUDGET_SECONDS = 55
# Connections opened, a few at a time, to find every worker.
MAX_CONNECTIONS = 120
BATCH = 6
SWEEP = re.compile(r"Task billing\.tasks\.release_expired_holds\[[^\]]+\] succeeded")


class Clock:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self, at_most: float) -> float:
        return max(0.5, min(at_most, self.deadline - time.monotonic()))


def test_prod_refuses_to_start_without_its_keys(tmp_path):
    env = production_env("postgres://nowhere/none", "redis://nowhere/0", tmp_path)
    del env["SWITCHBOARD_SECRET_KEY"], env["SWITCHBOARD_ENCRYPTION_KEY"]

    done = subprocess.run(
        ["deploy/prod.sh"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert done.returncode == 2
    assert "SWITCHBOARD_SECRET_KEY SWITCHBOARD_ENCRYPTION_KEY" in done.stderr
    assert "refusing to start" in done.stderr


def test_the_topology_serves_through_every_worker_and_runs_beat(fake, tmp_path):
    clock = Clock(BUDGET_SECONDS)
    with fresh_database() as database_url, private_redis(tmp_path) as redis_url:
        port = free_port()
        env = production_env(
            database_url,
            redis_url,
            tmp_path,
            HOST=HOST,
            PORT=str(port),
            WEB_CONCURRENCY=str(WORKERS),
            CELERY_CONCURRENCY="1",
            SWITCHBOARD_HOLD_SWEEP_SECONDS="1",
            SWITCHBOARD_BEAT_SCHEDULE=str(tmp_path / "beat-schedule"),
        )
        log_path = tmp_path / "honcho.log"
        with open(log_path, "wb") as log:
            honcho = subprocess.Popen(
                ["deploy/prod.sh"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _exercise(honcho, port, env, log_path, database_url, fake, clock)
            _shut_down(honcho, log_path, clock)
        finally:
            _kill_everything(honcho, log_path)
            print(log_path.read_text(errors="replace")[-6000:])


def _exercise(honcho, port, env, log_path, database_url, fake, clock):
    running = lambda: honcho.poll() is None  # noqa: E731
    wait_until(lambda: port_accepts(port), "web", clock.left(30), running)
    pids = honcho_pids(log_path.read_text())
    assert {"web.1", "worker.1", "beat.1"} <= set(pids), pids
    wait_until(
        lambda: len(uvicorn_workers(pids["web.1"])) == WORKERS,
        "uvicorn workers",
        clock.left(15),
        running,
    )
    workers = set(uvicorn_workers(pids["web.1"]))
    key = seed(env, fake.url())

    served: dict[int, list] = {pid: [] for pid in workers}
    with ThreadPoolExecutor(BATCH) as pool:
        opened = 0
        while not all(served.values()) and opened < MAX_CONNECTIONS:
            assert time.monotonic() < clock.deadline, served
            batch = list(
                pool.map(
                    lambda _: _through_one_connection(port, key, workers), range(BATCH)
                )
            )
            opened += BATCH
            for owner, answers in batch:
                served[owner].extend(answers)
    assert all(served.values()), f"workers never reached: {served}"

    answers = [answer for answers in served.values() for answer in answers]
    assert {answer.status for answer in answers} == {200}
    assert all(answer.request_id for answer in answers)
    recorded = books(database_url)
    for answer in answers:
        assert recorded.usage.get(answer.request_id) == 1, answer
        assert recorded.ledger.get(answer.request_id) == 1, answer
        assert recorded.statuses[answer.request_id] == "ok"
        assert recorded.charged[answer.request_id] > 0
    assert recorded.holds == 0 and recorded.held == 0

    # Any worker's /metrics counts the requests every worker served.
    assert _requests_counted(port) == len(answers)

    # Beat queues the sweep every second; the worker runs it.
    wait_until(
        lambda: SWEEP.search(log_path.read_text(errors="replace")),
        "release_expired_holds on the worker",
        clock.left(20),
        running,
    )


def _through_one_connection(port, key, workers):
    """Send a chat completion, streamed and not, on one new connection;
    return which worker answered them and the answers."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        answers = [chat(conn, key), chat(conn, key, stream=True)]
        owner = _owner(conn, port, workers)
        # /healthz names the worker that holds the connection.
        assert healthz_pid(conn) == owner
        conn.request("GET", "/readyz")
        ready = conn.getresponse()
        assert ready.status == 200, ready.read()
        ready.read()
        return owner, answers
    finally:
        conn.close()


def _requests_counted(port) -> float:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        assert response.status == 200
        text = response.read().decode()
    finally:
        conn.close()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("switchboard_requests_total{")
        and 'endpoint="chat.completions"' in line
    )


def _owner(conn, port, workers):
    owner = connection_owner(conn, port, sorted(workers))
    assert owner in workers, owner
    return owner


def _shut_down(honcho, log_path, clock):
    """SIGTERM honcho, as an operator's Ctrl-C or systemd would: every
    process stops, within honcho's own 5 s before it kills."""
    started = time.monotonic()
    honcho.send_signal(signal.SIGTERM)
    honcho.wait(clock.left(12))
    assert time.monotonic() - started < 8
    log = log_path.read_text(errors="replace")
    stopped = set(re.findall(r"(\w+\.\d+) stopped \(rc=", log))
    assert stopped == {"web.1", "worker.1", "beat.1"}, log[-3000:]
    assert "sending SIGKILL" not in log


def _kill_everything(honcho, log_path):
    for pid in honcho_pids(log_path.read_text(errors="replace")).values():
        kill_group(pid)
    kill_group(honcho.pid)
    with contextlib.suppress(subprocess.TimeoutExpired):
        honcho.wait(5)
