"""
Faults under bounded concurrent load, one scenario after another on one
production-like stack (tests/faults/chaos.py): upstream errors and drops,
clients that leave, a relay killed with -9, Redis stopped and restarted,
the relay's PostgreSQL connections terminated, PostgreSQL unreachable. After
each, the books must hold (chaos.verify); the suite prints a table of them.
"""

import time

import pytest

from tests.faults import chaos
from tests.faults.proxy import TcpProxy
from tests.prod.harness import (
    PYTHON,
    free_port,
    fresh_database,
    production_env,
    run_checked,
    seed,
)

pytestmark = pytest.mark.postgres

WORDS = " ".join(f"w{n}" for n in range(40))


class Stack:
    """Two relays on one database reached through a cuttable proxy."""

    def __init__(self, direct_url, proxy, redis_port, workdir, fake):
        self.direct_url = direct_url  # the test's own way in, never cut
        self.proxy = proxy
        self.redis_port = redis_port
        self.workdir = workdir
        self.fake = fake
        via_proxy = direct_url.replace(":5432/", f":{proxy.port}/")
        self.env = production_env(
            via_proxy,
            f"redis://127.0.0.1:{redis_port}/0",
            workdir,
            SWITCHBOARD_WORKER_HEARTBEAT_SECONDS=str(chaos.HEARTBEAT),
            SWITCHBOARD_WORKER_DEAD_SECONDS=str(chaos.DEAD),
            SWITCHBOARD_WORKER_SWEEP_SECONDS=str(chaos.SWEEP),
            SWITCHBOARD_JOURNAL_DIR=str(workdir / "journal"),
        )
        # The test's commands (audit, replay) go straight to the database.
        self.direct_env = {**self.env, "DATABASE_URL": direct_url}
        self.ports = [free_port(), free_port()]
        self.relays: list[chaos.Process] = []
        self.redis: chaos.Process | None = None

    def start(self) -> "Stack":
        self.redis = chaos.redis_server(self.redis_port, self.workdir)
        run_checked([PYTHON, "manage.py", "migrate", "--no-input", "-v0"], self.env)
        self.key = seed(self.env, self.fake.url("chaos"))
        chaos.rate_limit_key(self.direct_url)
        self.relays = [self.start_relay(n) for n in range(2)]
        return self

    def start_relay(self, n: int) -> chaos.Process:
        log = self.workdir / f"relay-{n}.log"
        return chaos.relay(self.env, self.ports[n], log)

    def stop(self) -> None:
        for process in [*self.relays, self.redis]:
            if process is not None:
                process.stop()

    def verify(self, scenario, results, **options):
        return chaos.verify(
            scenario, results, self.direct_url, self.direct_env, **options
        )


@pytest.fixture(scope="module")
def stack(fake_upstream, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("chaos")
    with fresh_database() as direct_url, TcpProxy(5432) as proxy:
        built = Stack(direct_url, proxy, free_port(), workdir, fake_upstream)
        try:
            yield built.start()
        finally:
            built.stop()
            for n, relay in enumerate(built.relays):
                print(f"--- relay {n}\n{relay.tail()}")


@pytest.fixture(autouse=True)
def upstream(stack):
    stack.fake.scenario("chaos", reply=WORDS)
    yield stack.fake
    stack.fake.scenario("chaos", reply=WORDS)


def test_upstream_errors_rate_limits_and_drops(stack, upstream):
    results = []
    upstream.scenario("chaos", status=500)
    results += chaos.load(stack.ports, stack.key, count=10)
    upstream.scenario("chaos", status=429, retry_after=1)
    results += chaos.load(stack.ports, stack.key, count=10)
    upstream.scenario("chaos", reply=WORDS, drop_after_chunks=3)
    results += chaos.load(stack.ports, stack.key, count=10)

    outcome = stack.verify("upstream 5xx, 429, drops", results)

    assert outcome.complete == 0
    assert {r.status for r in results[:10]} <= {502}
    # Every channel rate-limited: the client is told 429, not 502.
    assert {r.status for r in results[10:20]} <= {429}


def test_clients_that_leave_mid_stream(stack, upstream):
    upstream.scenario("chaos", reply=WORDS, chunk_delay=0.02)

    results = chaos.load(stack.ports, stack.key, count=24, abort_after=3)

    outcome = stack.verify("client aborts", results)
    assert sum(r.aborted for r in results) == 12
    assert outcome.recorded == 24  # the left ones too, charged what was made


def test_a_relay_killed_with_sigkill(stack, upstream):
    upstream.scenario("chaos", reply=WORDS, chunk_delay=0.1)
    victim = stack.relays[0]

    results = chaos.load(
        stack.ports, stack.key, count=16, fault=victim.kill, fault_after=1.0
    )
    started = time.monotonic()
    outcome = stack.verify("kill -9 of a relay", results)
    stack.relays[0] = stack.start_relay(0)

    # The survivor's sweep released the dead relay's holds within the bound.
    assert outcome.holds_cleared_s <= chaos.HOLD_BOUND
    assert time.monotonic() - started <= chaos.HOLD_BOUND + 30
    on_survivor = [r for r in results if r.port == stack.ports[1]]
    assert all(r.complete for r in on_survivor), on_survivor


def test_redis_stopped_and_restarted(stack, upstream):
    upstream.scenario("chaos", reply=WORDS, chunk_delay=0.01)

    def outage():
        stack.redis.kill()

    results = chaos.load(stack.ports, stack.key, count=24, fault=outage)
    stack.redis = chaos.redis_server(stack.redis_port, stack.workdir)
    results += chaos.load(stack.ports, stack.key, count=8)

    outcome = stack.verify("Redis stopped, restarted", results)
    assert outcome.complete == len(results)  # limits fail open, nothing refused


def test_postgres_connections_terminated(stack, upstream):
    upstream.scenario("chaos", reply=WORDS, chunk_delay=0.01)

    def terminate():
        for _ in range(3):
            chaos.terminate_connections(stack.direct_url)
            time.sleep(0.15)

    results = chaos.load(stack.ports, stack.key, count=40, fault=terminate)

    outcome = stack.verify("pg_terminate_backend", results)
    # Retried on fresh connections: only a request caught before its hold
    # may be refused (503), and nothing the upstream served is lost.
    assert set(outcome.statuses) <= {200, 503}
    assert outcome.complete >= 30


def test_postgres_unreachable_then_back(stack, upstream):
    upstream.scenario("chaos", reply=WORDS, latency=1.5)
    proxy = stack.proxy

    already = len(upstream.requests_for("chaos"))

    def cut_once_all_are_upstream():
        chaos.wait_until(
            lambda: len(upstream.requests_for("chaos")) >= already + 8,
            "every request at the upstream",
            10,
        )
        proxy.cut()

    results = chaos.load(
        stack.ports, stack.key, count=8, fault=cut_once_all_are_upstream, fault_after=0
    )
    # While the database is away, new requests are refused cleanly.
    refused = [chaos.send(port, stack.key, stream=False) for port in stack.ports]
    journaled = chaos.journal_depth(stack.workdir / "journal")
    proxy.restore()

    # Every answer the upstream gave reached its client, whose settlement
    # waited in the journal and was replayed once the database was back.
    assert all(r.complete for r in results), results
    assert {r.status for r in refused} == {503}
    assert journaled == len(results)
    outcome = stack.verify("PostgreSQL away, back", results + refused)
    assert outcome.recorded == len(results)
    assert chaos.journal_depth(stack.workdir / "journal") == 0
