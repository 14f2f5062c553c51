"""
Fixed-window counters in Django's cache (Redis when configured, so every
process counts together) for throttling signups and failed logins.
"""

import hashlib

from django.core.cache import cache


def _key(scope: str, ident: str) -> str:
    # Hashed: the identity (an IP and an address) stays out of the cache's
    # key space, and any length fits.
    digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
    return f"throttle:{scope}:{digest}"


def count(scope: str, ident: str) -> int:
    """Return how many hits `ident` has in the current window of `scope`."""
    return int(cache.get(_key(scope, ident), 0))


def hit(scope: str, ident: str, *, window: int) -> int:
    """Count one hit and return the count in the current window, this one
    included. The window starts with the first hit and lasts `window` s."""
    key = _key(scope, ident)
    # add() is atomic and keeps an existing counter's expiry; incr() is
    # atomic too, so concurrent hits are all counted.
    cache.add(key, 0, timeout=window)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.add(key, 1, timeout=window)
        return 1


def reset(scope: str, ident: str) -> None:
    cache.delete(_key(scope, ident))


def client_ip(request) -> str:
    """The address the request came from, as the server saw it. Behind a
    proxy, the proxy must set REMOTE_ADDR (e.g. uvicorn --proxy-headers
    with --forwarded-allow-ips), never trust a client-sent header here."""
    return request.META.get("REMOTE_ADDR", "") or "unknown"
