"""
How often people may try things: signups per IP, failed logins per IP and
address and per IP, password reset emails per IP and address, verification
emails per account, code redemptions per tenant.

Every way to log in (the portal's /login/, the admin's /admin/login/, the
staff's second-factor codes) counts its failures in the same login throttle
(login_blocked / login_failed / login_succeeded): an address blocked on one
path is blocked on all of them.

Fixed-window counters in Django's cache (Redis when configured, so every
process counts together). While Redis is away the cache stands in with each
process's memory (config/cache.py): throttles keep counting, per process, so
they still protect. Limits are read when used, so settings (and tests that
change them) apply at once.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache


@dataclass(frozen=True)
class Throttle:
    """At most `limit()` hits per identity in a window of `window` seconds."""

    scope: str
    window: int
    limit: Callable[[], int]

    def used_up(self, ident: str) -> bool:
        """Whether `ident` has no hit left in the current window."""
        return _count(self.scope, ident) >= self.limit()

    def hit(self, ident: str) -> bool:
        """Count one hit; return whether it was within the limit."""
        return _hit(self.scope, ident, window=self.window) <= self.limit()

    def reset(self, ident: str) -> None:
        _reset(self.scope, ident)


SIGNUPS = Throttle("signup", 3600, lambda: settings.SWITCHBOARD_SIGNUPS_PER_IP_PER_HOUR)
# Keyed by IP and address: one address guessed at from one network. A
# success clears it.
LOGIN_FAILURES = Throttle(
    "login",
    15 * 60,
    lambda: settings.SWITCHBOARD_LOGIN_FAILURES_PER_15_MIN,
)
# Keyed by IP alone: many addresses tried from one network. Never cleared by
# a success (one's own account would otherwise wipe it).
LOGIN_FAILURES_PER_IP = Throttle(
    "login-ip",
    15 * 60,
    lambda: settings.SWITCHBOARD_LOGIN_FAILURES_PER_IP_PER_15_MIN,
)
# Keyed by account alone, from anywhere: a password guessed from many
# networks. Higher than the per-network limit, so that someone else's
# failures lock the owner out only under a sustained attack; a success
# clears it.
LOGIN_FAILURES_PER_ACCOUNT = Throttle(
    "login-account",
    15 * 60,
    lambda: settings.SWITCHBOARD_LOGIN_FAILURES_PER_ACCOUNT_PER_15_MIN,
)
PASSWORD_RESETS_PER_IP = Throttle(
    "reset-ip",
    3600,
    lambda: settings.SWITCHBOARD_PASSWORD_RESETS_PER_IP_PER_HOUR,
)
PASSWORD_RESETS_PER_ADDRESS = Throttle(
    "reset-address",
    3600,
    lambda: settings.SWITCHBOARD_PASSWORD_RESETS_PER_ADDRESS_PER_HOUR,
)
VERIFICATION_RESENDS = Throttle("verify-resend", 3600, lambda: 5)
# A typo or two is fine, guessing codes is not (they carry ~79 random bits
# anyway).
REDEMPTIONS = Throttle("redeem", 3600, lambda: 10)


def _key(scope: str, ident: str) -> str:
    # Hashed: the identity (an IP and an address) stays out of the cache's
    # key space, and any length fits.
    digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
    return f"throttle:{scope}:{digest}"


def _count(scope: str, ident: str) -> int:
    """Return how many hits `ident` has in the current window of `scope`."""
    return int(cache.get(_key(scope, ident), 0))


def _hit(scope: str, ident: str, *, window: int) -> int:
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


def _reset(scope: str, ident: str) -> None:
    cache.delete(_key(scope, ident))


def normalised_address(email) -> str:
    """An email address as the throttles key it: trimmed, lower-case."""
    return str(email or "").strip().lower()[:254]


def _login_ident(request, email) -> str:
    return f"{client_ip(request)}|{normalised_address(email)}"


def login_blocked(request, email) -> bool:
    """Whether logging in as `email` from this request's IP is refused for
    now, whatever the path (password or second factor)."""
    return (
        LOGIN_FAILURES.used_up(_login_ident(request, email))
        or LOGIN_FAILURES_PER_IP.used_up(client_ip(request))
        or LOGIN_FAILURES_PER_ACCOUNT.used_up(normalised_address(email))
    )


def login_failed(request, email) -> None:
    """Count a wrong password or a wrong second-factor code for `email`."""
    LOGIN_FAILURES.hit(_login_ident(request, email))
    LOGIN_FAILURES_PER_IP.hit(client_ip(request))
    LOGIN_FAILURES_PER_ACCOUNT.hit(normalised_address(email))


def login_succeeded(request, email) -> None:
    LOGIN_FAILURES.reset(_login_ident(request, email))
    LOGIN_FAILURES_PER_ACCOUNT.reset(normalised_address(email))


def client_ip(request) -> str:
    """The address the request came from, as the server saw it. Behind a
    proxy, the proxy must set REMOTE_ADDR (e.g. uvicorn --proxy-headers
    with --forwarded-allow-ips), never trust a client-sent header here."""
    return request.META.get("REMOTE_ADDR", "") or "unknown"
