"""
The pooled HTTP clients for upstream calls: httpx's API over aiohttp's
connection pool, which costs far less CPU per request than httpx's own (see
bench/README.md). Clients are bound to an event loop: one per loop and name,
created on first use.
"""

import asyncio
import weakref
from collections.abc import Callable

import httpx
from django.conf import settings
from httpx_aiohttp import AiohttpTransport

_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict]" = (
    weakref.WeakKeyDictionary()
)


def timeout() -> httpx.Timeout:
    return httpx.Timeout(
        connect=settings.SWITCHBOARD_UPSTREAM_CONNECT_TIMEOUT,
        read=settings.SWITCHBOARD_UPSTREAM_READ_TIMEOUT,
        write=settings.SWITCHBOARD_UPSTREAM_READ_TIMEOUT,
        pool=settings.SWITCHBOARD_UPSTREAM_CONNECT_TIMEOUT,
    )


def _pooled() -> httpx.AsyncClient:
    size = settings.SWITCHBOARD_UPSTREAM_MAX_CONNECTIONS
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits),
        timeout=timeout(),
        # Upstream URLs and keys come from staff-configured channels, never
        # from the relay process's environment (proxies, netrc).
        trust_env=False,
    )


def client(
    name: str = "upstream", factory: Callable[[], httpx.AsyncClient] = _pooled
) -> httpx.AsyncClient:
    """Return this event loop's client called `name`, creating it if needed."""
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    found = per_loop.get(name)
    if found is None:
        found = per_loop[name] = factory()
    return found


async def close_clients() -> None:
    """Close this event loop's clients (at server shutdown)."""
    for found in _clients.pop(asyncio.get_running_loop(), {}).values():
        await found.aclose()
