"""Work a request starts but must not be cancelled with it."""

import asyncio
import logging

logger = logging.getLogger(__name__)

# Kept referenced so the event loop cannot drop running work.
_pending: set[asyncio.Future] = set()


def spawn(awaitable) -> asyncio.Future:
    """Run `awaitable` to completion even if its requester is cancelled."""
    task = asyncio.ensure_future(awaitable)
    _pending.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Future) -> None:
    _pending.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("background work failed", exc_info=task.exception())


async def drain() -> None:
    """Wait for the work still running (at server shutdown)."""
    if _pending:
        await asyncio.gather(*list(_pending), return_exceptions=True)
