"""
Redis going away while Switchboard runs, and coming back: rate limits,
breakers, login throttles, the management API's throttle and the cache fall
back to each process's own state, never answer 500, warn once, and use Redis
again once it returns, without a restart.

Each test runs a Redis server of its own, on its own port, and stops and
restarts it.
"""

import logging
import shutil
import socket
import subprocess
import time

import httpx
import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.test import Client, override_settings
from prometheus_client import REGISTRY

from accounts.services import api_key_create
from api.services import token_create
from config import redis_guard
from config.cache import FallbackRedisCache
from relay import breakers, limits
from relay.models import Channel
from tests.console.conftest import make_staff

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs redis-server"
)

BODY = {
    "model": "gpt-4.1-nano",
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 5,
}
PASSWORD = "correct horse battery"
STAFF_PASSWORD = "staff password 123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A redis-server of the test's own, stopped and started on one port."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = self.client()
        deadline = time.monotonic() + 5
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.01)
        client.close()

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=5)
            self._process = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def counters(self, pattern: str) -> dict[str, int]:
        """Return the counters whose keys match `pattern`."""
        client = self.client()
        try:
            return {
                key.decode(): int(client.get(key))
                for key in client.scan_iter(match=pattern)
            }
        finally:
            client.close()

    def names(self, pattern: str) -> list[str]:
        client = self.client()
        try:
            return [key.decode() for key in client.scan_iter(match=pattern)]
        finally:
            client.close()


class Clock:
    """The Redis guards' monotonic clock, moved by the tests."""

    def __init__(self):
        self.moved = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.moved

    def pass_pause(self) -> None:
        """Move past the pause after a failure: the next call probes Redis."""
        self.moved += redis_guard.RETRY_SECONDS + 0.1


@pytest.fixture(autouse=True)
def _fresh_guards():
    redis_guard.reset()
    yield
    redis_guard.reset()


@pytest.fixture
def guard_clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(redis_guard, "clock", clock)
    return clock


@pytest.fixture
def own_redis(guard_clock):
    """Point Switchboard (the live server too) at a Redis of its own."""
    server = RedisServer()
    server.start()
    # The cache that REDIS_URL configures, on this Redis.
    cache_settings = (
        settings.CACHES["default"]
        if settings.REDIS_URL
        else {"BACKEND": "config.cache.FallbackRedisCache"}
    )
    caches = {"default": {**cache_settings, "LOCATION": server.url, "KEY_PREFIX": "sb"}}
    with override_settings(REDIS_URL=server.url, CACHES=caches):
        # The live server makes its Redis clients again, for this Redis.
        limits.forget()
        breakers.forget()
        try:
            yield server
        finally:
            limits.forget()
            breakers.forget()
            server.stop()


class Errors:
    """The Redis errors the metrics counted since the test began."""

    def __init__(self):
        self._before = {c: self._total(c) for c in ("limits", "breakers", "cache")}

    def _total(self, component: str) -> float:
        labels = {"component": component}
        return REGISTRY.get_sample_value("switchboard_redis_errors_total", labels) or 0

    def count(self, component: str) -> int:
        return int(self._total(component) - self._before[component])


@pytest.fixture
def errors() -> Errors:
    return Errors()


def outage_warnings(caplog, component: str) -> int:
    return sum(
        record.levelno == logging.WARNING
        and record.getMessage().startswith(f"Redis is unavailable to the {component}")
        for record in caplog.records
    )


def call(relay, secret: str) -> httpx.Response:
    return httpx.post(
        f"{relay}/chat/completions",
        json=BODY,
        headers={"authorization": f"Bearer {secret}"},
        timeout=10,
    )


@pytest.fixture
def limits_clock(monkeypatch) -> list[float]:
    """The limits' wall clock, at the start of a minute."""
    now = [1_800_000_000.0]
    monkeypatch.setattr(limits, "wall_clock", lambda: now[0])
    return now


def test_rate_limits_count_per_process_while_redis_is_away(
    relay, channel, alice, own_redis, limits_clock, guard_clock, errors, caplog
):
    caplog.set_level(logging.WARNING, logger="config.redis_guard")
    key, secret = api_key_create(
        tenant=alice.tenant, name="limited", rpm_limit=2, tpm_limit=100_000
    )
    assert [call(relay, secret).status_code for _ in range(3)] == [200, 200, 429]
    window = int(limits_clock[0] // 60)
    assert own_redis.counters(f"sb:limit:rpm:{key.pk}:*") == {
        f"sb:limit:rpm:{key.pk}:{window}": 2
    }

    own_redis.stop()
    limits_clock[0] += 60
    # Served, not 500, and the limit still holds within this process.
    assert [call(relay, secret).status_code for _ in range(3)] == [200, 200, 429]
    # One failed call paused Redis: the rest went straight to the fallback.
    assert errors.count("limits") == 1
    guard_clock.pass_pause()
    assert call(relay, secret).status_code == 429
    assert errors.count("limits") == 2
    assert outage_warnings(caplog, "limits") == 1

    own_redis.start()
    guard_clock.pass_pause()
    limits_clock[0] += 60
    assert [call(relay, secret).status_code for _ in range(3)] == [200, 200, 429]
    # Counted in Redis again, where every process sees it.
    window = int(limits_clock[0] // 60)
    assert own_redis.counters(f"sb:limit:rpm:{key.pk}:*") == {
        f"sb:limit:rpm:{key.pk}:{window}": 2
    }
    assert own_redis.counters(f"sb:limit:tpm:{key.pk}:*")
    assert redis_guard.LIMITS.down_until == 0
    assert "Redis is back for the limits" in caplog.text


def test_login_throttles_still_block_while_redis_is_away(
    alice, own_redis, guard_clock, caplog
):
    caplog.set_level(logging.WARNING, logger="config.redis_guard")
    cache.clear()

    def login(password, ip="10.9.8.7"):
        return Client().post(
            "/login/",
            {"username": "alice@example.com", "password": password},
            REMOTE_ADDR=ip,
        )

    own_redis.stop()
    with override_settings(SWITCHBOARD_LOGIN_FAILURES_PER_15_MIN=3):
        for _ in range(3):
            assert login("wrong").status_code == 200
        # Counted by this process: even the right password waits now.
        assert login(PASSWORD).status_code == 429
        assert login(PASSWORD, ip="10.9.8.6").status_code == 302
        guard_clock.pass_pause()  # probes Redis, which fails again
        assert login(PASSWORD).status_code == 429
    assert outage_warnings(caplog, "cache") == 1

    own_redis.start()
    guard_clock.pass_pause()
    assert login("wrong", ip="10.9.8.5").status_code == 200
    # The shared counter in Redis holds that failure.
    assert list(own_redis.counters("sb:1:throttle:login:*").values()) == [1]
    assert redis_guard.CACHE.down_until == 0
    assert "Redis is back for the cache" in caplog.text


def test_admin_login_and_the_api_answer_while_redis_is_away(
    alice, own_redis, guard_clock
):
    staff = make_staff("ops@switchboard.test", superuser=True)
    _, token = token_create(user=alice.user, tenant=alice.tenant, name="ops")
    api = Client(headers={"authorization": f"Bearer {token}"})
    assert api.get("/api/balance/").status_code == 200
    assert own_redis.names("sb:1:throttle_user_*")

    def admin_login(password, ip="203.0.113.9"):
        return Client().post(
            "/admin/login/",
            {"username": staff.email, "password": password, "next": "/admin/"},
            REMOTE_ADDR=ip,
        )

    own_redis.stop()
    assert api.get("/api/balance/").status_code == 200
    assert admin_login(STAFF_PASSWORD).status_code == 302
    for _ in range(settings.SWITCHBOARD_LOGIN_FAILURES_PER_15_MIN):
        assert admin_login("wrong").status_code == 200
    assert admin_login(STAFF_PASSWORD).status_code == 429
    assert admin_login(STAFF_PASSWORD, ip="198.51.100.1").status_code == 302

    own_redis.start()
    guard_clock.pass_pause()
    assert api.get("/api/balance/").status_code == 200
    # The API's throttle counts in Redis again.
    assert own_redis.names("sb:1:throttle_user_*")


@pytest.fixture
def fast_breakers(settings):
    settings.SWITCHBOARD_BREAKER_FAILURES = 3
    settings.SWITCHBOARD_BREAKER_COOLDOWN_SECONDS = 30
    settings.SWITCHBOARD_RETRY_BACKOFF_SECONDS = 0


@pytest.fixture
def primary(channel, fake) -> Channel:
    fake.scenario("primary")
    primary = Channel.objects.create(
        name="primary",
        base_url=fake.url("primary"),
        model_names=["gpt-4.1-nano"],
        priority=10,
    )
    primary.add_key("sk-primary")
    return primary


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_breakers_work_per_process_while_redis_is_away(
    relay, alice, fake, primary, fast_breakers, own_redis, guard_clock, caplog
):
    caplog.set_level(logging.WARNING, logger="config.redis_guard")
    own_redis.stop()
    fake.scenario("primary", status=503)
    for _ in range(3):
        assert call(relay, alice.secret).status_code == 200
    assert fake.request_counts["primary"] == 3
    # The third failure opened the breaker, in this process (recorded in
    # the background, so allow a request or two in flight to try it again).
    for _ in range(2):
        assert call(relay, alice.secret).status_code == 200
    skipped_from = fake.request_counts["primary"]
    for _ in range(5):
        assert call(relay, alice.secret).status_code == 200
    assert fake.request_counts["primary"] == skipped_from
    assert outage_warnings(caplog, "breakers") == 1

    own_redis.start()
    guard_clock.pass_pause()
    # Back on Redis: its state (no open breaker) is the one every process
    # sees, so the primary is tried again and its failures land in Redis.
    name = breakers.channel_name(primary.pk)
    wait_until(
        lambda: (
            call(relay, alice.secret).status_code == 200
            and bool(own_redis.counters(f"sb:breaker:fail:{name}"))
        )
    )
    assert redis_guard.BREAKERS.down_until == 0


class BlackHole:
    """A TCP port that accepts connections and never answers."""

    def __enter__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"redis://127.0.0.1:{self.sock.getsockname()[1]}/0"
        return self

    def __exit__(self, *exc_info):
        self.sock.close()


def test_a_silent_redis_costs_one_short_timeout_then_nothing(guard_clock):
    with BlackHole() as hole:
        cache_ = FallbackRedisCache(hole.url, {"KEY_PREFIX": "sb"})
        started = time.monotonic()
        cache_.set("a", 1)
        first = time.monotonic() - started
        assert first < 2 * redis_guard.READ_TIMEOUT_SECONDS
        started = time.monotonic()
        for _ in range(100):
            assert cache_.get("a") == 1  # from this process's memory
        assert time.monotonic() - started < 0.1


def test_an_outage_warns_once_a_minute(guard_clock, caplog, errors):
    caplog.set_level(logging.WARNING, logger="config.redis_guard")
    guard = redis_guard.LIMITS
    for _ in range(10):
        guard.failed(redis.ConnectionError("refused"))
        guard_clock.pass_pause()
    assert outage_warnings(caplog, "limits") == 1
    assert errors.count("limits") == 10
    guard_clock.moved += redis_guard.WARN_EVERY_SECONDS
    guard.failed(redis.ConnectionError("refused"))
    assert outage_warnings(caplog, "limits") == 2
