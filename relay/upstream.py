"""
Upstream HTTP: httpx requests and responses over aiohttp's connection pool,
which costs far less CPU per request than httpx's own (design.md has the
measurements). Requests go straight to the transport: an httpx client would
add redirect, auth and cookie handling the relay must not have (a shared
cookie jar would leak between tenants). Transports are bound to an event
loop: one per loop and name, created on first use.
"""

import asyncio
import weakref
from collections.abc import Callable
from functools import lru_cache

import httpx
from django.conf import settings
from httpx_aiohttp import AiohttpTransport

# Statuses by which an upstream refuses the channel's key (revoked, not
# allowed, over its rate limit), never the customer's request or key.
KEY_STATUSES = frozenset({401, 403, 429})

_transports: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict]" = (
    weakref.WeakKeyDictionary()
)


@lru_cache(maxsize=4096)
def url(address: str) -> httpx.URL:
    """Return `address` parsed: once per address, since httpx checks a URL
    character by character, a tenth of the relay's own CPU per request.
    httpx.URL is immutable, so requests can share it."""
    return httpx.URL(address)


def timeout(connect: float | None = None, read: float | None = None) -> httpx.Timeout:
    """Return the timeouts to use, the settings' where none are given."""
    connect = connect or settings.SWITCHBOARD_UPSTREAM_CONNECT_TIMEOUT
    read = read or settings.SWITCHBOARD_UPSTREAM_READ_TIMEOUT
    return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)


def _pooled() -> httpx.AsyncBaseTransport:
    size = settings.SWITCHBOARD_UPSTREAM_MAX_CONNECTIONS
    return AiohttpTransport(
        limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
        # Upstream URLs and keys come from staff-configured channels, never
        # from the relay process's environment (proxies, netrc).
        trust_env=False,
    )


def transport(
    name: str = "upstream",
    factory: Callable[[], httpx.AsyncBaseTransport] = _pooled,
) -> httpx.AsyncBaseTransport:
    """Return this event loop's transport called `name`, creating it if needed."""
    per_loop = _transports.setdefault(asyncio.get_running_loop(), {})
    found = per_loop.get(name)
    if found is None:
        found = per_loop[name] = factory()
    return found


async def send(
    request: httpx.Request,
    via: httpx.AsyncBaseTransport,
    limits: httpx.Timeout | None = None,
) -> httpx.Response:
    """Send `request` and return the response with its body still unread."""
    request.extensions["timeout"] = (limits or timeout()).as_dict()
    response = await via.handle_async_request(request)
    response.request = request
    return response


async def close_transports() -> None:
    """Close this event loop's transports (at server shutdown)."""
    for found in _transports.pop(asyncio.get_running_loop(), {}).values():
        await found.aclose()
