"""
A key's own limits on the hot path: the addresses it may be used from, and
requests and tokens per minute.

Minutes are fixed windows counted in Redis when REDIS_URL is set, so every
process shares them, and in the process otherwise. While Redis is away each
process counts on its own, and returns to Redis when it answers again (see
config/redis_guard.py). A request is admitted while its key's count for the
current minute is under the limit. Tokens are counted as the prompt estimate
on admission and corrected with the usage at settlement, so a minute may
overshoot its token limit by the request that crossed it, as OpenAI's own
limits do. Keys without limits cost nothing here.

What admission counted is what the answer tells in OpenAI's x-ratelimit-*
headers (Rate): no second look at the counters.
"""

import asyncio
import ipaddress
import math
import time
import weakref
from dataclasses import dataclass

from django.conf import settings

from accounts.auth import KeyIdentity
from config import redis_guard
from relay import errors

WINDOW_SECONDS = 60
# Tests move the clock.
wall_clock = time.time


class LocalCounters:
    """Counters of this process only."""

    def __init__(self):
        self._counts: dict[str, int] = {}
        self._window = 0

    async def add(self, items: list[tuple[str, int]], window: int) -> list[int]:
        if window != self._window:  # a new minute: the old counts are done
            self._counts.clear()
            self._window = window
        values = []
        for name, amount in items:
            self._counts[name] = self._counts.get(name, 0) + amount
            values.append(self._counts[name])
        return values


class RedisCounters:
    """Counters in Redis, expiring after their minute; this process's own
    while Redis is away."""

    def __init__(self, url: str):
        import redis.asyncio

        self._redis = redis.asyncio.Redis.from_url(url, **redis_guard.CLIENT_OPTIONS)
        self._prefix = f"{settings.CACHES['default'].get('KEY_PREFIX', 'sb')}:limit:"
        self.fallback = LocalCounters()

    async def add(self, items: list[tuple[str, int]], window: int) -> list[int]:
        guard = redis_guard.LIMITS
        if guard.down_until and guard.paused():
            return await self.fallback.add(items, window)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for name, amount in items:
                    pipe.incrby(self._prefix + name, amount)
                    pipe.expire(self._prefix + name, 2 * WINDOW_SECONDS)
                results = await pipe.execute()
        except redis_guard.ERRORS as exc:
            guard.failed(exc)
            return await self.fallback.add(items, window)
        if guard.down_until:
            guard.recovered()
        return results[::2]

    async def close(self) -> None:
        await self._redis.aclose()


_counters: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, object]" = (
    weakref.WeakKeyDictionary()
)


def counters():
    """This event loop's counters (Redis clients are loop-bound)."""
    loop = asyncio.get_running_loop()
    found = _counters.get(loop)
    if found is None:
        found = _counters[loop] = (
            RedisCounters(settings.REDIS_URL) if settings.REDIS_URL else LocalCounters()
        )
    return found


async def close_counters() -> None:
    found = _counters.pop(asyncio.get_running_loop(), None)
    if isinstance(found, RedisCounters):
        await found.close()


def forget() -> None:
    """Drop this process's counters (tests)."""
    _counters.clear()


def check_address(identity: KeyIdentity, address: str | None) -> None:
    """Refuse a key used from outside its IP allowlist."""
    if not identity.allowed_networks:
        return
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        ip = None
    if ip is None or not any(ip in network for network in identity.allowed_networks):
        raise errors.forbidden(
            f"This API key may not be used from {address or 'an unknown address'}.",
            code="ip_not_allowed",
        )


def _names(identity: KeyIdentity, window: int) -> tuple[str, str]:
    return f"rpm:{identity.key_id}:{window}", f"tpm:{identity.key_id}:{window}"


def duration(seconds: float) -> str:
    """Return `seconds` as OpenAI's reset headers write it: "20ms", "1.5s",
    "6m0s"."""
    ms = max(0, math.ceil(round(seconds * 1000, 6)))
    if ms < 1000:
        return f"{ms}ms" if ms else "0s"
    minutes, ms = divmod(ms, 60_000)
    text = f"{ms / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{minutes}m{text}" if minutes else text


@dataclass(frozen=True, slots=True)
class Rate:
    """A key's minute as admitting a request left it: its limits (None: not
    limited), what the minute has counted, and seconds until it ends."""

    rpm_limit: int | None
    requests: int
    tpm_limit: int | None
    tokens: int
    reset: float

    def headers(self) -> dict[str, str]:
        """Return OpenAI's x-ratelimit-* headers for the limits the key has."""
        reset = duration(self.reset)
        found = {}
        if self.rpm_limit is not None:
            found["x-ratelimit-limit-requests"] = str(self.rpm_limit)
            found["x-ratelimit-remaining-requests"] = str(
                max(0, self.rpm_limit - self.requests)
            )
            found["x-ratelimit-reset-requests"] = reset
        if self.tpm_limit is not None:
            found["x-ratelimit-limit-tokens"] = str(self.tpm_limit)
            found["x-ratelimit-remaining-tokens"] = str(
                max(0, self.tpm_limit - self.tokens)
            )
            found["x-ratelimit-reset-tokens"] = reset
        return found


async def admit(identity: KeyIdentity, tokens: int) -> Rate | None:
    """
    Count a request of about `tokens` prompt tokens against its key's
    limits, or refuse it with 429. Return the key's minute as counted, or
    None if the key has no limits (nothing was counted).
    """
    if identity.rpm_limit is None and identity.tpm_limit is None:
        return None
    now = wall_clock()
    window = int(now // WINDOW_SECONDS)
    rpm, tpm = _names(identity, window)
    items = []
    if identity.rpm_limit is not None:
        items.append((rpm, 1))
    if identity.tpm_limit is not None:
        items.append((tpm, tokens))
    store = counters()
    counted = await store.add(items, window)
    values = dict(zip((name for name, _ in items), counted, strict=True))
    refusal = None
    if identity.rpm_limit is not None and values[rpm] > identity.rpm_limit:
        refusal = ("requests", f"{identity.rpm_limit} requests per minute")
    elif identity.tpm_limit is not None and values[tpm] - tokens >= identity.tpm_limit:
        refusal = ("tokens", f"{identity.tpm_limit} tokens per minute")
    left = WINDOW_SECONDS - now % WINDOW_SECONDS
    # A refused request uses none of the key's allowance.
    undo = 0 if refusal is None else 1
    rate = Rate(
        rpm_limit=identity.rpm_limit,
        requests=values.get(rpm, 0) - undo,
        tpm_limit=identity.tpm_limit,
        tokens=values.get(tpm, 0) - undo * tokens,
        reset=left,
    )
    if refusal is None:
        return rate
    await store.add([(name, -amount) for name, amount in items], window)
    wait = max(1, int(left))
    kind, limit = refusal
    raise errors.rate_limited(
        f"Rate limit reached for this API key: {limit}. Try again in {wait} s.",
        kind=kind,
        retry_after=wait,
        headers=rate.headers(),
    )


async def settle(identity: KeyIdentity, tokens: int) -> None:
    """Correct the minute's token count by `tokens`: the real usage less the
    estimate counted on admission."""
    if identity.tpm_limit is None or not tokens:
        return
    window = int(wall_clock() // WINDOW_SECONDS)
    await counters().add([(_names(identity, window)[1], tokens)], window)
