"""
Refusals made visible: every /v1 request refused after its key was
identified (401 revoked or expired, 402, 403, 429) counts against that key,
by minute, status and code, so that a customer debugging a 429 can see it.

A refusal costs an increment of a counter in this process's memory. Every
FLUSH_SECONDS a loop of the process adds its counts to RefusalCount rows in
one batch of upserts that add (, so every process's counts
merge), never one write per refused request. While the database is away
the counts wait in memory, up to MAX_PENDING distinct counters; a process
killed outright loses at most its last FLUSH_SECONDS of counts, which are
diagnostics, not money. Nothing goes through Redis: an in-memory count per
process is what the periodic flush needs, and it works the same with Redis
away.
"""

import asyncio
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import Max, Sum
from django.utils import timezone

from config.db import run_db
from relay.errors import RelayError
from relay.models import RefusalCount

logger = logging.getLogger(__name__)

COUNTED_STATUSES = frozenset({401, 402, 403, 429})
FLUSH_SECONDS = 10.0
MAX_PENDING = 100_000
# What the request was identified as (accounts.auth.KeyIdentity), on it.
_ATTRIBUTE = "switchboard_identity"
# Tests move the clock.
wall_clock = time.time

# (key id, minute as epoch seconds, status, code) -> refusals not yet written.
_pending: dict[tuple[int, int, int, str], int] = {}
_lock = threading.Lock()
_flushers: dict[asyncio.AbstractEventLoop, asyncio.Task] = {}


def identified(request, identity) -> None:
    """Remember which key sent `request`, for its refusal to count."""
    setattr(request, _ATTRIBUTE, identity)


def count(request, refusal: RelayError) -> None:
    """Count `refusal` of `request` against its key, if it is one that
    counts and the key was identified."""
    if refusal.status not in COUNTED_STATUSES:
        return
    identity = getattr(request, _ATTRIBUTE, None)
    if identity is None:
        return
    record(identity.key_id, refusal.status, refusal.code or "")


def record(key_id: int, status: int, code: str, *, at: float | None = None) -> None:
    minute = int((wall_clock() if at is None else at) // 60) * 60
    counter = (key_id, minute, status, code[:64])
    with _lock:
        if counter in _pending or len(_pending) < MAX_PENDING:
            _pending[counter] = _pending.get(counter, 0) + 1
    _ensure_flushing()


def _ensure_flushing() -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    task = _flushers.get(loop)
    if task is None or task.done():
        for gone in [old for old in _flushers if old.is_closed()]:
            del _flushers[gone]
        _flushers[loop] = loop.create_task(_flush_every())


async def _flush_every() -> None:
    while True:
        await asyncio.sleep(FLUSH_SECONDS)
        if not _pending:
            continue
        try:
            await run_db(flush)
        except Exception as exc:  # kept in memory; the next round retries
            logger.warning("could not write refusal counts: %s", exc)


async def stop() -> None:
    """Stop this loop's flusher and write what is pending (server shutdown)."""
    task = _flushers.pop(asyncio.get_running_loop(), None)
    if task is not None:
        task.cancel()
    if _pending:
        try:
            await run_db(flush)
        except Exception as exc:
            logger.warning("refusal counts lost at shutdown: %s", exc)


def _take() -> dict:
    global _pending
    with _lock:
        taken, _pending = _pending, {}
    return taken


def _give_back(counts: dict) -> None:
    with _lock:
        for counter, added in counts.items():
            if counter in _pending or len(_pending) < MAX_PENDING:
                _pending[counter] = _pending.get(counter, 0) + added


_UPSERT = """
INSERT INTO relay_refusalcount (tenant_id, api_key_id, minute, status, code, count)
SELECT k.tenant_id, k.id, %s, %s, %s, %s FROM accounts_apikey k WHERE k.id = %s
ON CONFLICT (api_key_id, minute, status, code)
DO UPDATE SET count = relay_refusalcount.count + excluded.count
"""


def flush() -> int:
    """Add this process's pending counts to the database; return how many
    refusals were written. Counts of a key deleted since are dropped."""
    counts = _take()
    if not counts:
        return 0
    rows = [
        (datetime.fromtimestamp(minute, UTC), status, code, added, key_id)
        for (key_id, minute, status, code), added in counts.items()
    ]
    try:
        with connection.cursor() as cursor:
            cursor.executemany(_UPSERT, rows)
    except BaseException:
        _give_back(counts)
        raise
    return sum(counts.values())


def forget() -> None:
    """Drop the counts not written yet (tests)."""
    _take()


def last_day(tenant_id: int, *, key_id: int | None = None, now=None) -> list[dict]:
    """The tenant's refusals of the last 24 hours by key, status and code,
    most first: each with the key's id, name and prefix, `refused` and
    `last_minute` (when the last of them was)."""
    since = (now or timezone.now()) - timedelta(hours=24)
    rows = RefusalCount.objects.filter(tenant_id=tenant_id, minute__gte=since)
    if key_id is not None:
        rows = rows.filter(api_key_id=key_id)
    return list(
        rows.values("api_key_id", "api_key__name", "api_key__prefix", "status", "code")
        .annotate(refused=Sum("count"), last_minute=Max("minute"))
        .order_by("-refused", "api_key_id", "code")
    )
