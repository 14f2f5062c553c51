"""
Readiness: can this process serve? PostgreSQL answers, Redis answers (when
REDIS_URL is set) and every migration is applied.

Each check is bounded by CHECK_SECONDS, so /readyz answers well within a
probe's usual one-second timeout, and the answer is reused for
CACHE_SECONDS: a flood of probes costs one round trip a second. Migrations
are read once and then only until they are all applied: a running process
never sees them go back.
"""

import asyncio
import logging
import time
import weakref

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from config.db import on_postgres, pg_fetchone_async, run_db
from ops.metrics import POSTGRES_ERRORS, REDIS_ERRORS

logger = logging.getLogger(__name__)

CHECK_SECONDS = 0.8
CACHE_SECONDS = 1.0
OK = "ok"

_answer: tuple[float, dict[str, str]] | None = None
_migrated = False
_redis_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, object]" = (
    weakref.WeakKeyDictionary()
)
# The checks failing at the last answer: a failure is logged when it starts.
_failing: set[str] = set()


async def readiness() -> dict[str, str]:
    """Return each check's verdict: "ok", or what is wrong (never a host or
    an error's text: /readyz is public)."""
    global _answer
    now = time.monotonic()
    if _answer is not None and now - _answer[0] < CACHE_SECONDS:
        return _answer[1]
    database, redis = await asyncio.gather(_database(), _redis())
    checks = {"database": database[0], "migrations": database[1], "redis": redis}
    _answer = (now, checks)
    return checks


def _failed(name: str, exc: BaseException | None) -> None:
    if name not in _failing:
        _failing.add(name)
        logger.warning("readiness: %s failing: %r", name, exc)


async def _database() -> tuple[str, str]:
    try:
        if on_postgres():
            await asyncio.wait_for(pg_fetchone_async("SELECT 1", {}), CHECK_SECONDS)
        else:
            await asyncio.wait_for(run_db(_select_one), CHECK_SECONDS)
    except Exception as exc:  # unreachable, refused, timed out
        POSTGRES_ERRORS.labels("readyz").inc()
        _failed("database", exc)
        return "unreachable", "unknown"
    _failing.discard("database")
    if _migrated:
        return OK, OK
    try:
        unapplied = await asyncio.wait_for(run_db(_unapplied), CHECK_SECONDS * 4)
    except Exception as exc:
        _failed("migrations", exc)
        return OK, "unknown"
    if unapplied:
        return OK, f"{unapplied} unapplied"
    _failing.discard("migrations")
    return OK, OK


def _select_one() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _unapplied() -> int:
    """Return how many migrations are not applied (on a database thread)."""
    global _migrated
    executor = MigrationExecutor(connection)
    count = len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    _migrated = count == 0
    return count


async def _redis() -> str:
    if not settings.REDIS_URL:
        return "not configured"
    try:
        await asyncio.wait_for(_redis_client().ping(), CHECK_SECONDS)
    except Exception as exc:
        REDIS_ERRORS.labels("readyz").inc()
        _failed("redis", exc)
        return "unreachable"
    _failing.discard("redis")
    return OK


def _redis_client():
    """This event loop's client (redis.asyncio clients are loop-bound)."""
    loop = asyncio.get_running_loop()
    client = _redis_clients.get(loop)
    if client is None:
        import redis.asyncio

        client = _redis_clients[loop] = redis.asyncio.Redis.from_url(
            settings.REDIS_URL,
            socket_connect_timeout=CHECK_SECONDS,
            socket_timeout=CHECK_SECONDS,
        )
    return client


def ready(checks: dict[str, str]) -> bool:
    return all(value in (OK, "not configured") for value in checks.values())


def forget() -> None:
    """Drop the cached answer and migration verdict (tests)."""
    global _answer, _migrated
    _answer, _migrated = None, False
