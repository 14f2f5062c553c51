"""
Database work from async code.

Django's async ORM sends every query through one shared thread. The relay
instead runs each unit of work (a key lookup, a catalog load) as one sync
function on a small pool of threads, each with its own persistent
connection. Its hottest statements (hold, settle) skip the threads on
PostgreSQL: one prepared statement each on an async connection pool per
event loop (see bench/README.md for what each step saved).
"""

import asyncio
import logging
import re
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache, lru_cache, partial
from typing import Any, TypeVar

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db import utils as django_db
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ops.metrics import GROUP_COMMITS, GROUPED_STATEMENTS, POSTGRES_ERRORS

T = TypeVar("T")
logger = logging.getLogger(__name__)

# What a lost or refused database connection raises, through Django or
# straight from psycopg: the errors worth a retry on a fresh connection, and
# a 503 once retries are spent. (Errors in a statement itself are not here.)
CONNECTION_ERRORS = (
    psycopg.OperationalError,
    PoolTimeout,
    django_db.OperationalError,
    django_db.InterfaceError,
)

_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(
            max_workers=settings.SWITCHBOARD_DB_THREADS, thread_name_prefix="db"
        )
    return _executor


def _call(fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
    try:
        return fn(*args, **kwargs)
    except CONNECTION_ERRORS:
        # This thread's connection broke while idle (a server restart, a
        # terminated backend): replace it and try once more. What runs here
        # is safe to repeat (reads, and writes keyed by their request id).
        _close_broken()
        try:
            return fn(*args, **kwargs)
        except Exception:
            _close_broken()
            raise
    except Exception:
        _close_broken()
        raise


def _close_broken() -> None:
    # Replaced on the next call rather than failing every later call on
    # this thread.
    for conn in connections.all(initialized_only=True):
        conn.close_if_unusable_or_obsolete()


def run_db(fn: Callable[..., T], *args: Any, **kwargs: Any) -> "asyncio.Future[T]":
    """Run `fn(*args, **kwargs)` on a database thread; await its result."""
    loop = asyncio.get_running_loop()
    return loop.run_in_executor(_pool(), partial(_call, fn, args, kwargs))


@cache
def on_postgres() -> bool:
    # The engine is fixed at start-up; reading it through the connection
    # proxy would cost a context-local lookup on every request.
    return connections[DEFAULT_DB_ALIAS].vendor == "postgresql"


_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%|%")


@lru_cache(maxsize=64)
def _native(sql: str) -> tuple[bytes, tuple[str, ...]]:
    """
    `sql`, written with psycopg's named placeholders (%(name)s), rewritten
    with PostgreSQL's own ($1, $2...), and the names in their order.

    psycopg parses a statement's placeholders on every execution once it is
    longer than 4 KB or has more than 50 parameters (its cache skips those),
    and the settlement's is both (the parsing alone is 0.1 ms). Rewritten
    once here, it goes to a raw cursor as it is, its arguments a list: 0.3
    ms less CPU per request in all (bench/README.md).
    """
    names: list[str] = []

    def native(match: re.Match) -> str:
        name = match.group(1)
        if name is None:
            if match.group(0) == "%":
                raise ValueError(f"only %(name)s placeholders and %% here: {sql!r}")
            return "%"
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PLACEHOLDER.sub(native, sql).encode(), tuple(names)


def _bound(sql: str, params: dict) -> tuple[bytes, list]:
    query, names = _native(sql)
    return query, [params[name] for name in names]


def pg_fetchone(sql: str, params: dict) -> tuple | None:
    """
    Execute one statement on PostgreSQL with server-side parameters, and
    return its first row. `sql` takes its parameters by name, %(name)s,
    from `params`.

    Django binds parameters client-side, which costs the hot path's wide
    statements more CPU than the statement itself. (Django's connections
    have psycopg's prepared statements off, so `prepare` only tells on the
    async pool's, where it spares PostgreSQL planning it on every request.)
    """
    connection.ensure_connection()
    query, args = _bound(sql, params)
    try:
        with psycopg.RawCursor(connection.connection) as cursor:
            cursor.execute(query, args, prepare=True)
            return cursor.fetchone()
    except psycopg.Error:
        connection.errors_occurred = True
        raise


def shutdown() -> None:
    """
    Retire the database threads. Their connections close with them, which
    lets a test run drop its database.
    """
    global _executor
    executor, _executor = _executor, None
    if executor is None:
        return
    workers = len(executor._threads)
    if workers:
        # One task per thread: the barrier keeps each thread busy until every
        # thread has picked one up, so every thread closes its own connection.
        barrier = threading.Barrier(workers)

        def close_own() -> None:
            barrier.wait(timeout=5)
            connections.close_all()

        for _ in range(workers):
            executor.submit(close_own)
    executor.shutdown(wait=True)


# The hot path's own statements skip the threads altogether on PostgreSQL:
# an async connection pool per event loop, no thread hand-offs.
_async_pools: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any]" = (
    weakref.WeakKeyDictionary()
)


async def _async_pool():
    loop = asyncio.get_running_loop()
    pool = _async_pools.get(loop)
    if pool is None:
        params = connection.get_connection_params()
        for django_only in ("cursor_factory", "context", "prepare_threshold"):
            params.pop(django_only, None)
        # An unreachable server fails a request in seconds (then 503), not
        # after psycopg's defaults of minutes.
        params.setdefault("connect_timeout", 3)
        pool = _async_pools[loop] = AsyncConnectionPool(
            kwargs={**params, "autocommit": True},
            min_size=1,
            max_size=settings.SWITCHBOARD_DB_THREADS,
            # Waiting longer for a connection means the server is away.
            timeout=2,
            open=False,
            name="hot-path",
        )
        await pool.open()
    return pool


async def pg_fetchone_async(sql: str, params: dict) -> tuple | None:
    """pg_fetchone for async code, on the event loop's own connection pool."""
    query, args = _bound(sql, params)
    pool = await _async_pool()
    async with pool.connection() as conn, psycopg.AsyncRawCursor(conn) as cursor:
        await cursor.execute(query, args, prepare=True)
        return await cursor.fetchone()


class GroupCommit:
    """
    One statement's group commit on one event loop. A call that finds no
    batch of the statement in flight runs alone, at once, as
    pg_fetchone_async would: no wait at low load. Calls that arrive while
    one is in flight queue, and go together when it returns: one
    transaction, one round trip and one commit (WAL flush) for all of them,
    each statement seeing the effects of those before it, as if they had
    run one after the other. So a statement's own guarantees (a hold's
    conditional UPDATE cannot overdraw) hold for the batch.

    A batch runs in the order of `key` (the wallet), so that two processes'
    batches lock rows in the same order and cannot deadlock. A statement
    that fails for its own reasons (a duplicate request id) rolls the batch
    back; each of its statements then runs alone, so that one failure is
    its own caller's only. A lost connection fails every caller of the
    batch: each retries (see retrying), as it would alone.
    """

    def __init__(self, sql: str, key: Callable[[dict], Any]):
        self.sql = sql
        self.key = key
        self.waiting: list[tuple[dict, asyncio.Future]] = []
        self.busy = False

    async def fetchone(self, params: dict) -> tuple | None:
        if self.busy:
            future = asyncio.get_running_loop().create_future()
            self.waiting.append((params, future))
            return await future
        self.busy = True
        try:
            return await pg_fetchone_async(self.sql, params)
        finally:
            self._next()

    def _next(self) -> None:
        if not self.waiting:
            self.busy = False
            return
        batch, self.waiting = self.waiting, []
        task = asyncio.ensure_future(self._flush(batch))
        _flushing.add(task)
        task.add_done_callback(_flushing.discard)

    async def _flush(self, batch: list[tuple[dict, asyncio.Future]]) -> None:
        try:
            if len(batch) == 1:
                await _run_alone(self.sql, *batch[0])
                return
            batch.sort(key=lambda item: self.key(item[0]))
            try:
                rows = await _fetch_batch(self.sql, [params for params, _ in batch])
            except CONNECTION_ERRORS as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
            except psycopg.Error:
                GROUP_COMMITS.labels(outcome="rolled_back").inc()
                for params, future in batch:
                    await _run_alone(self.sql, params, future)
                return
            GROUP_COMMITS.labels(outcome="committed").inc()
            GROUPED_STATEMENTS.inc(len(batch))
            for (_, future), row in zip(batch, rows, strict=True):
                if not future.done():
                    future.set_result(row)
        finally:
            self._next()


async def _run_alone(sql: str, params: dict, future: asyncio.Future) -> None:
    try:
        row = await pg_fetchone_async(sql, params)
    except Exception as exc:
        if not future.done():
            future.set_exception(exc)
    else:
        if not future.done():
            future.set_result(row)


async def _fetch_batch(sql: str, batch: list[dict]) -> list[tuple | None]:
    """Run `sql` once per parameter set in one transaction; return each
    statement's first row (None: no row)."""
    query = _native(sql)[0]
    pool = await _async_pool()
    rows = []
    async with (
        pool.connection() as conn,
        conn.transaction(),
        psycopg.AsyncRawCursor(conn) as cursor,
    ):
        await cursor.executemany(
            query, [_bound(sql, params)[1] for params in batch], returning=True
        )
        while True:
            rows.append(await cursor.fetchone())
            if not cursor.nextset():
                break
    return rows


# Flushes in progress, kept referenced so the event loop cannot drop them.
_flushing: set[asyncio.Future] = set()
_groups: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict]" = (
    weakref.WeakKeyDictionary()
)


async def pg_fetchone_grouped(
    sql: str, params: dict, key: Callable[[dict], Any]
) -> tuple | None:
    """pg_fetchone_async, group-committed with the concurrent calls of the
    same statement (GroupCommit): for the hot path's holds and settlements."""
    per_loop = _groups.setdefault(asyncio.get_running_loop(), {})
    group = per_loop.get(sql)
    if group is None:
        group = per_loop[sql] = GroupCommit(sql, key)
    return await group.fetchone(params)


async def discard_broken_connections() -> None:
    """After a connection error: drop this event loop's pooled connections
    that broke with it (a restarted server breaks them all), so that a retry
    gets a working one. The thread path replaces its own (see _call)."""
    pool = _async_pools.get(asyncio.get_running_loop())
    if pool is not None:
        await pool.check()


async def retrying(call: Callable[[], Any], *, what: str, on_retry=None):
    """
    Await `call()`, calling it again on a fresh connection while the
    database connection fails, SWITCHBOARD_DB_RETRIES times at most, with a
    short pause growing each time; then raise the last error. `call` must be
    safe to repeat (the statements here are keyed by their request id).
    """
    retries = settings.SWITCHBOARD_DB_RETRIES
    for attempt in range(retries + 1):
        try:
            return await call()
        except PoolTimeout:
            POSTGRES_ERRORS.labels(component="pool").inc()
            raise  # no connection came in its time: the server is away
        except CONNECTION_ERRORS:
            POSTGRES_ERRORS.labels(component="hot-path").inc()
            if attempt == retries:
                raise
            if on_retry is not None:
                on_retry()
            logger.warning("database connection failed during %s: retrying", what)
            await discard_broken_connections()
            await asyncio.sleep(0.05 * 4**attempt)  # 50, 200, 800 ms
    raise AssertionError("unreachable")


async def close_async_pool() -> None:
    """Close this event loop's pool (at server shutdown)."""
    pool = _async_pools.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        await pool.close()
