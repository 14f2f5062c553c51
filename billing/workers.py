"""
Which serving processes are alive, so that a killed one's holds are released
within seconds instead of at their expiry.

Every process that places holds has a name (host, pid and start time),
written on each of its holds (Hold.owner), and says it is alive every
SWITCHBOARD_WORKER_HEARTBEAT_SECONDS (a Worker row's `seen_at`). A worker
unseen for SWITCHBOARD_WORKER_DEAD_SECONDS is dead: the sweep releases its
holds and forgets it. The sweep runs on every live serving process and in
Celery beat, every SWITCHBOARD_WORKER_SWEEP_SECONDS, so a killed worker's
holds are released within DEAD + SWEEP seconds (35 by default) while any of
them runs; the hold's own expiry stays the backstop.

A process that stops cleanly marks itself dead on its way out, so that
anything it left is released by the next sweep.
"""

import asyncio
import contextlib
import logging
import os
import socket
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from billing import journal
from billing.holds import hold_release
from billing.models import Hold, Worker
from config.db import CONNECTION_ERRORS, run_db
from ops.metrics import POSTGRES_ERRORS

logger = logging.getLogger(__name__)

_name: tuple[int, str] | None = None
_loop_task: asyncio.Task | None = None
# Holds that may have been placed by a reserve whose connection broke
# (tenant id, request id): released once the database answers again.
_to_release: set[tuple[int, str]] = set()
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def name() -> str:
    """This process's worker name (a forked child gets its own)."""
    global _name
    pid = os.getpid()
    if _name is None or _name[0] != pid:
        _name = (pid, f"{socket.gethostname()[:60]}:{pid}:{int(time.time())}")
    return _name[1]


def heartbeat(*, now: datetime | None = None) -> None:
    """Say this process is alive."""
    now = now or timezone.now()
    updated = Worker.objects.filter(name=name()).update(seen_at=now)
    if not updated:
        Worker.objects.get_or_create(
            name=name(), defaults={"started_at": now, "seen_at": now}
        )


def retire() -> None:
    """Mark this process dead, so the next sweep releases what it left."""
    Worker.objects.filter(name=name()).update(seen_at=LONG_AGO)


def orphaned_holds(*, now: datetime, placed_before: datetime):
    """Holds placed before `placed_before` whose worker is not alive at
    `now`: unseen for the dead bound, or never seen at all."""
    cutoff = now - timedelta(seconds=settings.SWITCHBOARD_WORKER_DEAD_SECONDS)
    live = Worker.objects.filter(seen_at__gte=cutoff).values("name")
    return (
        Hold.objects.exclude(owner="")
        .exclude(owner__in=live)
        .filter(created_at__lt=placed_before)
    )


def holds_release_dead(*, now: datetime | None = None) -> int:
    """
    Release the holds of dead workers: those unseen since the dead bound,
    and those of a name never seen (a process killed before its first
    heartbeat) once the hold is older than that bound. Forget dead workers
    left without holds. Return how many holds were released.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.SWITCHBOARD_WORKER_DEAD_SECONDS)
    orphaned = orphaned_holds(now=now, placed_before=cutoff).values_list(
        "tenant_id", "request_id"
    )[:1000]
    released = sum(
        hold_release(tenant_id=tenant_id, request_id=request_id)
        for tenant_id, request_id in orphaned
    )
    Worker.objects.filter(seen_at__lt=cutoff).exclude(
        name__in=Hold.objects.values("owner")
    ).delete()
    if released:
        logger.warning("released %d holds of dead workers", released)
    return released


def release_later(tenant_id: int, request_id: str) -> None:
    """Release this request's hold, if it has one, once the database is back:
    its reserve failed with the connection, perhaps after placing it."""
    _to_release.add((tenant_id, request_id))


def _release_pending() -> None:
    for tenant_id, request_id in list(_to_release):
        hold_release(tenant_id=tenant_id, request_id=request_id)
        _to_release.discard((tenant_id, request_id))


def ensure_running() -> None:
    """Start this process's heartbeat loop, once (from its event loop). A
    heartbeat of 0 seconds turns it off: holds then wait for their expiry."""
    global _loop_task
    if settings.SWITCHBOARD_WORKER_HEARTBEAT_SECONDS <= 0:
        return
    if _loop_task is None or _loop_task.done():
        _loop_task = asyncio.get_running_loop().create_task(_keep_alive())


async def stop() -> None:
    """Stop the loop and mark this process dead (at server shutdown)."""
    global _loop_task
    task, _loop_task = _loop_task, None
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    # If the database is away, the dead bound tells instead.
    with contextlib.suppress(*CONNECTION_ERRORS):
        await run_db(retire)


async def _keep_alive() -> None:
    """Heartbeat; sweep dead workers' holds and replay settlement journals."""
    every = settings.SWITCHBOARD_WORKER_HEARTBEAT_SECONDS
    sweep_every = settings.SWITCHBOARD_WORKER_SWEEP_SECONDS
    last_sweep = time.monotonic() - sweep_every / 2  # not all at once at start
    while True:
        try:
            await run_db(heartbeat)
            if _to_release:
                await run_db(_release_pending)
            if journal.pending():
                await run_db(journal.replay)
            if time.monotonic() - last_sweep >= sweep_every:
                last_sweep = time.monotonic()
                await run_db(holds_release_dead)
        except CONNECTION_ERRORS:
            POSTGRES_ERRORS.labels(component="heartbeat").inc()
            logger.warning("heartbeat: the database is unreachable")
        except Exception:
            logger.exception("heartbeat failed")
        await asyncio.sleep(every)
