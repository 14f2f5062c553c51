"""
Django's cache in Redis, with this process's memory standing in while Redis
is away.

The login and signup throttles, the management API's throttle and anything
else that uses django.core.cache keep working through a Redis outage: each
process counts on its own (so login throttles still protect, per process)
and goes back to the shared counts in Redis once it answers again. See
config/redis_guard.py for when Redis is tried.
"""

from functools import wraps

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

from config import redis_guard

guard = redis_guard.CACHE

# Entries the stand-in keeps (a throttle counter each, mostly).
FALLBACK_MAX_ENTRIES = 10_000


def _redis_or_fallback(name: str):
    """Return the cache method `name`: Redis's, or the stand-in's while Redis
    is paused or when the call fails."""
    on_redis = getattr(RedisCache, name)

    @wraps(on_redis)
    def method(self, *args, **kwargs):
        if guard.down_until and guard.paused():
            return getattr(self.fallback, name)(*args, **kwargs)
        try:
            result = on_redis(self, *args, **kwargs)
        except redis_guard.ERRORS as exc:
            guard.failed(exc)
            return getattr(self.fallback, name)(*args, **kwargs)
        if guard.down_until:
            guard.recovered()
        return result

    return method


class FallbackRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._options = {**redis_guard.CLIENT_OPTIONS, **self._options}
        local_params = {**params, "OPTIONS": {"MAX_ENTRIES": FALLBACK_MAX_ENTRIES}}
        self.fallback = LocMemCache(f"redis-fallback:{server}", local_params)

    # BaseCache builds the rest (get_or_set, decr, the async methods...) on
    # these.
    add = _redis_or_fallback("add")
    get = _redis_or_fallback("get")
    set = _redis_or_fallback("set")
    touch = _redis_or_fallback("touch")
    delete = _redis_or_fallback("delete")
    get_many = _redis_or_fallback("get_many")
    has_key = _redis_or_fallback("has_key")
    incr = _redis_or_fallback("incr")
    set_many = _redis_or_fallback("set_many")
    delete_many = _redis_or_fallback("delete_many")
    _clear = _redis_or_fallback("clear")

    def clear(self):
        self.fallback.clear()
        return self._clear()
