"""
Circuit breakers for channels and upstream keys, shared by every process.

A breaker counts failures in a sliding window. At SWITCHBOARD_BREAKER_FAILURES
failures it opens for SWITCHBOARD_BREAKER_COOLDOWN_SECONDS: requests skip the
channel (or key). When the cool-down ends the breaker is half-open: traffic
flows again, the next failure re-opens it at once (the window still holds
the earlier failures) and the next success closes it (clears the count).

The state lives in Redis when REDIS_URL is set, so every process sees a
breaker another one opened; without Redis (the embedded default) it lives in
the process, as it does while Redis is away (each process then sees only its
own failures; see config/redis_guard.py for the way back to Redis). The hot
path never waits for Redis: it reads a local view that is refreshed in the
background about once a second, and records failures and recoveries without
awaiting them. The view keeps when each open breaker's cool-down ends, so the
first request after it probes at once, whenever the next refresh comes.
"""

import asyncio
import logging
import time
from functools import partial

from django.conf import settings

from config import redis_guard
from config.loops import PerLoop
from relay.background import spawn

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 1.0
# Tests move the clocks, both by the same amount: cool-downs end on the
# monotonic clock of each process, and travel between processes as wall-clock
# seconds.
clock = time.monotonic
wall_clock = time.time


def channel_name(channel_id: int) -> str:
    return f"channel:{channel_id}"


def key_name(key_id: int) -> str:
    return f"key:{key_id}"


class LocalStore:
    """Breaker state in this process only."""

    def __init__(self):
        self._failures: dict[str, list[float]] = {}
        self._open_until: dict[str, float] = {}

    async def failure(self, name: str, *, trip: bool = False) -> None:
        now = clock()
        window = settings.SWITCHBOARD_BREAKER_WINDOW_SECONDS
        recent = [t for t in self._failures.get(name, ()) if t > now - window]
        recent.append(now)
        self._failures[name] = recent
        if trip or len(recent) >= settings.SWITCHBOARD_BREAKER_FAILURES:
            cooldown = settings.SWITCHBOARD_BREAKER_COOLDOWN_SECONDS
            self._open_until[name] = now + cooldown

    async def success(self, name: str) -> None:
        self._failures.pop(name, None)

    async def snapshot(self, names: list[str]) -> tuple[dict[str, float], set[str]]:
        now = clock()
        window = settings.SWITCHBOARD_BREAKER_WINDOW_SECONDS
        # Until when each open breaker stays open, in wall-clock seconds.
        wall = wall_clock() - now
        opened = {
            n: self._open_until[n] + wall
            for n in names
            if self._open_until.get(n, 0) > now
        }
        failing = {
            n for n in names if any(t > now - window for t in self._failures.get(n, ()))
        }
        return opened, failing


class RedisStore:
    """Breaker state in Redis: `fail:<name>` counters, and `open:<name>`
    holding the wall-clock second the breaker's cool-down ends. While Redis
    is away, the state of this process."""

    def __init__(self, url: str):
        import redis.asyncio

        self._redis = redis.asyncio.Redis.from_url(url, **redis_guard.CLIENT_OPTIONS)
        self._prefix = f"{settings.CACHES['default'].get('KEY_PREFIX', 'sb')}:breaker:"
        self.fallback = LocalStore()

    async def failure(self, name: str, *, trip: bool = False) -> None:
        await self._redis_or_fallback(
            partial(self._failure, name, trip),
            partial(self.fallback.failure, name, trip=trip),
        )

    async def success(self, name: str) -> None:
        await self._redis_or_fallback(
            partial(self._success, name), partial(self.fallback.success, name)
        )

    async def snapshot(self, names: list[str]) -> tuple[dict[str, float], set[str]]:
        return await self._redis_or_fallback(
            partial(self._snapshot, names), partial(self.fallback.snapshot, names)
        )

    async def _redis_or_fallback(self, on_redis, on_fallback):
        guard = redis_guard.BREAKERS
        if guard.down_until and guard.paused():
            return await on_fallback()
        try:
            result = await on_redis()
        except redis_guard.ERRORS as exc:
            guard.failed(exc)
            return await on_fallback()
        if guard.down_until:
            guard.recovered()
        return result

    async def _failure(self, name: str, trip: bool) -> None:
        fail, opened = self._prefix + "fail:" + name, self._prefix + "open:" + name
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(fail)
            pipe.expire(fail, settings.SWITCHBOARD_BREAKER_WINDOW_SECONDS)
            count, _ = await pipe.execute()
        if trip or count >= settings.SWITCHBOARD_BREAKER_FAILURES:
            cooldown = settings.SWITCHBOARD_BREAKER_COOLDOWN_SECONDS
            await self._redis.set(opened, repr(wall_clock() + cooldown), ex=cooldown)

    async def _success(self, name: str) -> None:
        await self._redis.delete(self._prefix + "fail:" + name)

    async def _snapshot(self, names: list[str]) -> tuple[dict[str, float], set[str]]:
        if not names:
            return {}, set()
        keys = [self._prefix + "open:" + n for n in names]
        keys += [self._prefix + "fail:" + n for n in names]
        values = await self._redis.mget(keys)
        count = len(names)
        opened = {n: _until(v) for n, v in zip(names, values[:count], strict=True) if v}
        failing = {n for n, v in zip(names, values[count:], strict=True) if v}
        return opened, failing

    async def close(self) -> None:
        await self._redis.aclose()


def _until(value: bytes) -> float:
    """Return when an `open:` flag's cool-down ends (wall-clock seconds)."""
    try:
        return float(value)
    except ValueError:  # written before the flag held its end: open a while
        return wall_clock() + settings.SWITCHBOARD_BREAKER_COOLDOWN_SECONDS


class Breakers:
    """The local view of every breaker, and the way to move them."""

    def __init__(self, store):
        self.store = store
        # Open breakers, and when each one's cool-down ends (monotonic).
        self.opened: dict[str, float] = {}
        self.failing: set[str] = set()
        self._names: list[str] = []
        self._refreshed = 0.0
        self._refreshing: asyncio.Task | None = None

    def is_open(self, name: str) -> bool:
        until = self.opened.get(name)
        return until is not None and until > clock()

    def watch(self, names: list[str]) -> None:
        """Keep the view of `names` fresh; refresh it when it is stale."""
        self._names = names
        stale = clock() - self._refreshed > REFRESH_SECONDS
        if stale and (self._refreshing is None or self._refreshing.done()):
            self._refreshing = asyncio.ensure_future(self._refresh())

    async def _refresh(self) -> None:
        self._refreshed = clock()
        try:
            opened, self.failing = await self.store.snapshot(self._names)
            self.opened = _on_local_clock(opened)
        except Exception:
            logger.warning("could not read breaker state", exc_info=True)

    def failure(self, name: str, *, trip: bool = False) -> None:
        """Record a failure (`trip`: open at once, e.g. a revoked key)."""
        self.failing.add(name)
        if trip:
            cooldown = settings.SWITCHBOARD_BREAKER_COOLDOWN_SECONDS
            self.opened[name] = clock() + cooldown
        spawn(self._failure(name, trip))

    async def _failure(self, name: str, trip: bool) -> None:
        await self.store.failure(name, trip=trip)
        opened, _ = await self.store.snapshot([name])
        self.opened |= _on_local_clock(opened)

    def success(self, name: str) -> None:
        """Record a success; closes a half-open breaker."""
        if name in self.failing:
            self.failing.discard(name)
            self.opened.pop(name, None)
            spawn(self.store.success(name))

    async def close(self) -> None:
        if isinstance(self.store, RedisStore):
            await self.store.close()


def _on_local_clock(opened: dict[str, float]) -> dict[str, float]:
    """Return wall-clock ends of cool-downs on this process's monotonic clock."""
    shift = clock() - wall_clock()
    return {name: until + shift for name, until in opened.items()}


_breakers = PerLoop(
    lambda: Breakers(
        RedisStore(settings.REDIS_URL) if settings.REDIS_URL else LocalStore()
    )
)
# This event loop's breakers; closed at shutdown; dropped by tests. Every
# loop's, for the console without Redis (each loop keeps its own state).
breakers = _breakers.get
close_breakers = _breakers.close
forget = _breakers.forget
every_loop = _breakers.each
