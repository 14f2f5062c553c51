"""
Whether Redis is usable now, for each part of Switchboard that keeps state
there (rate limits, breakers, Django's cache).

Redis is optional at run time: while it is away each part falls back to
state of its own process, and goes back to Redis when it returns, without a
restart. A failed call pauses Redis for that part for RETRY_SECONDS: calls
go straight to the fallback instead of paying a connection timeout each,
then one call probes Redis again. An outage logs one warning a minute per
part and process, not one per request.

Healthy, a guard costs its callers one attribute check per call:

    if guard.down_until and guard.paused():
        ... use the fallback
    try:
        ... use Redis
    except redis_guard.ERRORS as exc:
        guard.failed(exc)
        ... use the fallback
    if guard.down_until:
        guard.recovered()
"""

import logging
import time

from redis.exceptions import RedisError

from ops.metrics import REDIS_ERRORS

logger = logging.getLogger(__name__)

# What a Redis call raises when the server is away, slow or refuses it.
ERRORS = (RedisError, OSError)

# Short timeouts, so that a Redis that stopped answering (a black hole rather
# than a refused connection) cannot stall requests: a failure then pauses it.
CONNECT_TIMEOUT_SECONDS = 0.25
READ_TIMEOUT_SECONDS = 0.5
# Client options for every Redis connection of the parts above.
CLIENT_OPTIONS = {
    "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
    "socket_timeout": READ_TIMEOUT_SECONDS,
}

RETRY_SECONDS = 5.0
WARN_EVERY_SECONDS = 60.0
# Tests move the clock.
clock = time.monotonic


class Guard:
    """The state of Redis as one part of one process sees it."""

    def __init__(self, component: str):
        self.component = component
        # While Redis is failing: when to try it again (monotonic). 0 when
        # it works, so that the hot path checks one attribute.
        self.down_until = 0.0
        self._warned_at: float | None = None

    def paused(self) -> bool:
        """Whether to skip Redis for now. Once the pause is over, let this
        call probe it and keep the others on the fallback while it does."""
        now = clock()
        if now < self.down_until:
            return True
        self.down_until = now + RETRY_SECONDS
        return False

    def failed(self, exc: BaseException) -> None:
        """Record a failed call: pause Redis, warn at most once a minute."""
        now = clock()
        self.down_until = now + RETRY_SECONDS
        count_error(self.component)
        if self._warned_at is None or now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            logger.warning(
                "Redis is unavailable to the %s (%s: %s): using this process's own "
                "state, and trying Redis again every %g s",
                self.component,
                type(exc).__name__,
                exc,
                RETRY_SECONDS,
            )

    def recovered(self) -> None:
        """Record a call that worked after a failure."""
        if self.down_until:
            self.down_until = 0.0
            logger.warning("Redis is back for the %s", self.component)

    def reset(self) -> None:
        """Forget any outage (tests)."""
        self.down_until = 0.0
        self._warned_at = None


def count_error(component: str) -> None:
    """Count one failed Redis call of `component` for the metrics."""
    REDIS_ERRORS.labels(component=component).inc()


LIMITS = Guard("limits")
BREAKERS = Guard("breakers")
CACHE = Guard("cache")
GUARDS = (LIMITS, BREAKERS, CACHE)


def reset() -> None:
    """Forget every outage of this process (tests)."""
    for guard in GUARDS:
        guard.reset()
