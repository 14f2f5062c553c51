"""
A key's limit on requests in flight (ApiKey.max_in_flight).

Each request of a limited key takes a slot before it holds any money and
gives it back when it ends: a whole answer once it is read, a stream once it
ends or its client leaves. Slots live in Redis when REDIS_URL is set, so
every process shares them: a sorted set per key whose members are request
ids scored by their lease's end. A slot is taken by one script that drops
expired leases, counts what is left and adds the new one, so concurrent
requests cannot both take the last slot. Each process renews the leases of
its requests still running every LEASE_SECONDS / 3, so a long stream keeps
its slot, while the slots of a process that died lapse within LEASE_SECONDS.

While Redis is away each process counts its own requests against the limit,
as relay.limits does for requests per minute (config/redis_guard.py), and
goes back to Redis when it answers again. Keys without the limit cost
nothing here: no slot, no Redis call.
"""

import asyncio
import contextlib
import logging
import time
import weakref
from dataclasses import dataclass

from django.conf import settings

from accounts.auth import KeyIdentity
from config import redis_guard
from config.loops import PerLoop
from relay import errors

logger = logging.getLogger(__name__)

LEASE_SECONDS = 60
# Seconds a refused client is told to wait.
RETRY_AFTER_SECONDS = 1
# Tests move the clock of the per-process slots.
clock = time.monotonic

# KEYS[1]: the key's set; ARGV: limit, lease ms, member. Redis's own clock,
# so processes whose clocks differ still agree on which leases ended.
_TAKE = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
# KEYS: sets; ARGV: lease ms, then one member per key. Only leases still held
# are renewed: a slot given back stays given back.
_RENEW = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local lease = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if redis.call('ZSCORE', key, ARGV[i + 1]) then
    redis.call('ZADD', key, now + lease, ARGV[i + 1])
    redis.call('PEXPIRE', key, lease)
  end
end
return 1
"""


@dataclass(eq=False, slots=True, weakref_slot=True)
class Slot:
    """One request's place among its key's requests in flight."""

    key_id: int
    member: str
    # Taken in this process's own counts (Redis was away), not in Redis.
    local: bool
    released: bool = False


class LocalSlots:
    """The slots of this process only, each with its lease's end."""

    def __init__(self):
        self._held: dict[int, dict[str, float]] = {}

    def take(self, key_id: int, member: str, limit: int) -> bool:
        now = clock()
        held = self._held.setdefault(key_id, {})
        for name in [name for name, ends in held.items() if ends <= now]:
            del held[name]
        if len(held) >= limit:
            return False
        held[member] = now + LEASE_SECONDS
        return True

    def renew(self, slots) -> None:
        ends = clock() + LEASE_SECONDS
        for slot in slots:
            held = self._held.get(slot.key_id)
            if held is not None and slot.member in held:
                held[slot.member] = ends

    def give_back(self, slot: Slot) -> None:
        held = self._held.get(slot.key_id)
        if held is not None:
            held.pop(slot.member, None)
            if not held:
                del self._held[slot.key_id]


class Slots:
    """The slots of one event loop: in Redis if it is configured, this
    process's own otherwise and while Redis is away."""

    def __init__(self, url: str | None):
        self.local = LocalSlots()
        self._redis = None
        if url:
            import redis.asyncio

            self._redis = redis.asyncio.Redis.from_url(
                url, **redis_guard.CLIENT_OPTIONS
            )
            self._take = self._redis.register_script(_TAKE)
            self._renew = self._redis.register_script(_RENEW)
            prefix = settings.CACHES["default"].get("KEY_PREFIX", "sb")
            self._prefix = f"{prefix}:inflight:"
        # This loop's slots still running, renewed until given back. Weak:
        # a slot whose request vanished without giving it back lapses.
        self.running: weakref.WeakSet[Slot] = weakref.WeakSet()
        self._renewing: asyncio.Task | None = None

    def _name(self, key_id: int) -> str:
        return f"{self._prefix}{key_id}"

    async def take(self, key_id: int, member: str, limit: int) -> Slot | None:
        guard = redis_guard.LIMITS
        if self._redis is None or (guard.down_until and guard.paused()):
            return self._take_locally(key_id, member, limit)
        try:
            taken = await self._take(
                keys=[self._name(key_id)],
                args=[limit, LEASE_SECONDS * 1000, member],
            )
        except redis_guard.ERRORS as exc:
            guard.failed(exc)
            return self._take_locally(key_id, member, limit)
        if guard.down_until:
            guard.recovered()
        return self._started(Slot(key_id, member, local=False)) if taken else None

    def _take_locally(self, key_id: int, member: str, limit: int) -> Slot | None:
        if not self.local.take(key_id, member, limit):
            return None
        return self._started(Slot(key_id, member, local=True))

    def _started(self, slot: Slot) -> Slot:
        self.running.add(slot)
        if self._renewing is None or self._renewing.done():
            self._renewing = asyncio.get_running_loop().create_task(self._renew_all())
        return slot

    async def give_back(self, slot: Slot) -> None:
        if slot.released:
            return
        slot.released = True
        self.running.discard(slot)
        if slot.local:
            self.local.give_back(slot)
            return
        try:
            await self._redis.zrem(self._name(slot.key_id), slot.member)
        except redis_guard.ERRORS as exc:
            # Its lease, no longer renewed, gives it back within LEASE_SECONDS.
            redis_guard.LIMITS.failed(exc)

    async def _renew_all(self) -> None:
        while self.running:
            await asyncio.sleep(LEASE_SECONDS / 3)
            slots = list(self.running)
            self.local.renew(slot for slot in slots if slot.local)
            shared = [slot for slot in slots if not slot.local]
            if not shared:
                continue
            try:
                await self._renew(
                    keys=[self._name(slot.key_id) for slot in shared],
                    args=[LEASE_SECONDS * 1000, *(slot.member for slot in shared)],
                )
            except redis_guard.ERRORS as exc:
                redis_guard.LIMITS.failed(exc)
            except Exception:
                logger.exception("could not renew the leases of requests in flight")

    async def close(self) -> None:
        if self._renewing is not None:
            self._renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewing
        if self._redis is not None:
            await self._redis.aclose()


_slots = PerLoop(lambda: Slots(settings.REDIS_URL))
# This event loop's slots; closed at shutdown; dropped by tests.
slots = _slots.get
close_slots = _slots.close
forget = _slots.forget


async def acquire(identity: KeyIdentity, request_id: str) -> Slot | None:
    """
    Take a slot for this request of a key with a limit on requests in
    flight, or refuse it with 429 concurrency_limit_exceeded. None for a
    key without the limit.
    """
    limit = identity.max_in_flight
    if limit is None:
        return None
    slot = await slots().take(identity.key_id, request_id, limit)
    if slot is None:
        raise errors.RelayError(
            429,
            f"Too many requests in flight for this API key: it allows {limit} "
            "at once. Retry when one of them has finished.",
            type="requests",
            code="concurrency_limit_exceeded",
            headers={"retry-after": str(RETRY_AFTER_SECONDS)},
        )
    return slot


async def release(slot: Slot | None) -> None:
    """Give a request's slot back (once; nothing for None)."""
    if slot is not None and not slot.released:
        await slots().give_back(slot)
