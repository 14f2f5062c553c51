"""
The fault-injection harness: Switchboard as production runs it (two relay
processes, PostgreSQL reached through a proxy the test can cut, a Redis of
the test's own, fast liveness bounds), bounded concurrent load of whole and
streamed requests, and the books checked after every fault.

The promise checked (design brief, "Failure promise"): a request the
upstream served is settled exactly once and shows in the usage log, whatever
fails around it; no hold outlives its bound; no balance goes below the
overdraft limit; `billing_audit` is clean; no client ever sees a 500.
"""

import http.client
import shutil
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tests.prod.harness import (
    HOST,
    PYTHON,
    ROOT,
    books,
    chat_body,
    headers,
    port_accepts,
    run_checked,
    stop,
    wait_until,
)

# Liveness bounds of the relays under test (the defaults are 5/20/15 s).
HEARTBEAT, DEAD, SWEEP = 1, 3, 1
HOLD_BOUND = DEAD + SWEEP + 3  # what the test allows a dead worker's holds


@dataclass
class Result:
    port: int
    stream: bool
    status: int = 0
    request_id: str = ""
    complete: bool = False
    aborted: bool = False
    error: str = ""


@dataclass
class Outcome:
    """One row of the table the suite prints."""

    scenario: str
    sent: int
    statuses: Counter = field(default_factory=Counter)
    complete: int = 0
    recorded: int = 0
    cut: int = 0
    server_errors: int = 0
    holds_cleared_s: float = 0.0
    audit: str = ""

    def row(self) -> str:
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(self.statuses.items()))
        return (
            f"{self.scenario:<26} {self.sent:>4} {self.complete:>8} {self.cut:>4} "
            f"{self.recorded:>8} {self.server_errors:>4} "
            f"{self.holds_cleared_s:>9.1f} {self.audit:<6} {statuses}"
        )


HEADER = (
    f"{'scenario':<26} {'sent':>4} {'complete':>8} {'cut':>4} {'recorded':>8} "
    f"{'500s':>4} {'holds (s)':>9} {'audit':<6} statuses"
)
OUTCOMES: list[Outcome] = []


# -- processes ----------------------------------------------------------------


class Process:
    """A child process in its own session, with its output in a log file."""

    def __init__(self, argv: list[str], env: dict, log: Path):
        self.argv, self.env, self.log_path = argv, env, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Process":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """kill -9: no shutdown of any kind."""
        self.proc.kill()
        self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, 5)

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def relay(env: dict, port: int, log: Path) -> Process:
    """One relay process, as the Procfile's web command runs it."""
    process = Process(
        [str(Path(PYTHON).parent / "uvicorn"), "config.asgi:application"]
        + ["--host", HOST, "--port", str(port), "--loop", "uvloop"]
        + ["--http", "httptools", "--no-access-log"]
        + ["--timeout-graceful-shutdown", "2"],
        env,
        log,
    ).start()
    wait_until(lambda: port_accepts(port), f"relay on {port}", 30, process.alive)
    return process


def redis_server(port: int, workdir: Path) -> Process:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed")
    process = Process(
        [binary, "--bind", HOST, "--port", str(port), "--save", ""]
        + ["--appendonly", "no", "--dir", str(workdir)],
        {},
        workdir / f"redis-{port}.log",
    ).start()
    wait_until(lambda: port_accepts(port), "redis-server", 10, process.alive)
    return process


# -- load -----------------------------------------------------------------------


def send(port: int, key: str, *, stream: bool, abort_after: int | None = None):
    result = Result(port=port, stream=stream)
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request(
            "POST",
            "/v1/chat/completions",
            chat_body(stream=stream, max_tokens=64),
            headers(key),
        )
        response = conn.getresponse()
        result.status = response.status
        result.request_id = response.getheader("x-request-id", "")
        if stream and response.status == 200:
            body, chunks = b"", 0
            while chunk := response.read1(65536):
                body += chunk
                chunks += 1
                if abort_after is not None and chunks >= abort_after:
                    result.aborted = True
                    break
            result.complete = body.rstrip().endswith(b"data: [DONE]")
        else:
            body = response.read()
            result.complete = response.status == 200 and b'"choices"' in body
    except (OSError, http.client.HTTPException) as exc:
        result.error = repr(exc)
    finally:
        conn.close()
    return result


def load(
    ports: list[int],
    key: str,
    *,
    count: int,
    concurrency: int = 8,
    abort_after: int | None = None,
    fault=None,
    fault_after: float = 0.3,
) -> list[Result]:
    """Send `count` requests (every other one streamed) across `ports`,
    `concurrency` at a time; call `fault()` `fault_after` seconds in."""
    with ThreadPoolExecutor(concurrency) as pool:
        futures = [
            pool.submit(
                send,
                ports[n % len(ports)],
                key,
                stream=n % 2 == 0,
                abort_after=abort_after if n % 2 == 0 else None,
            )
            for n in range(count)
        ]
        if fault is not None:
            time.sleep(fault_after)
            fault()
        return [future.result(timeout=60) for future in futures]


# -- the books --------------------------------------------------------------------


def terminate_connections(database_url: str) -> int:
    """pg_terminate_backend every other connection to the database."""
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        ).fetchall()
    return len(rows)


def holds_left(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM billing_hold").fetchone()[0]


def lowest_balance(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT min(balance) FROM billing_wallet").fetchone()[0]


def settle_down(database_url: str, bound: float) -> float:
    """Wait until no hold is left; return how long it took."""
    started = time.monotonic()
    try:
        wait_until(lambda: holds_left(database_url) == 0, "holds released", bound)
    except pytest.fail.Exception:
        with psycopg.connect(database_url) as conn:
            left = conn.execute(
                "SELECT request_id, owner, created_at FROM billing_hold"
            ).fetchall()
        pytest.fail(f"holds not released after {bound}s: {left}")
    return time.monotonic() - started


def verify(
    scenario: str,
    results: list[Result],
    database_url: str,
    env: dict,
    *,
    hold_bound: float = HOLD_BOUND,
) -> Outcome:
    """Check the promise after a fault; record the scenario's row."""
    outcome = Outcome(scenario, sent=len(results))
    outcome.holds_cleared_s = settle_down(database_url, hold_bound)
    recorded = books(database_url)
    for result in results:
        outcome.statuses[result.status or "cut"] += 1
        outcome.complete += result.complete
        outcome.cut += result.status == 200 and not result.complete
        outcome.server_errors += result.status == 500
        if result.request_id and recorded.usage.get(result.request_id):
            outcome.recorded += 1
    OUTCOMES.append(outcome)

    assert outcome.server_errors == 0, [r for r in results if r.status == 500]
    for result in results:
        # Served whole: settled once, charged once.
        if result.complete:
            assert recorded.usage.get(result.request_id) == 1, result
            assert recorded.ledger.get(result.request_id) == 1, result
        # Anything else the relay answered (but a 503: nothing was held)
        # has its usage record too.
        elif result.status not in (0, 200, 503):
            assert recorded.usage.get(result.request_id) == 1, result
    assert all(n == 1 for n in recorded.usage.values())
    assert all(n == 1 for n in recorded.ledger.values())
    assert recorded.holds == 0 and recorded.held == 0
    assert lowest_balance(database_url) >= 0  # the overdraft limit is 0
    run_checked([PYTHON, "manage.py", "billing_audit"], env)
    outcome.audit = "clean"
    return outcome


def journal_depth(journal_dir: Path) -> int:
    """Settlements waiting in the journal files (read, not replayed)."""
    if not journal_dir.exists():
        return 0
    return sum(
        path.read_bytes().count(b"\n")
        for path in journal_dir.iterdir()
        if path.name.endswith((".jsonl", ".claimed"))
    )


def rate_limit_key(database_url: str) -> None:
    """Give the seeded key per-minute limits, so its requests count in Redis."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE accounts_apikey SET rpm_limit = 100000, tpm_limit = 10000000"
        )
