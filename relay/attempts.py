"""
Failover: send a request to the first channel and upstream key that accept
it. Nothing has reached the client yet, so trying again is safe. What an
upstream's status means decides where the next attempt goes, and feeds the
channel's and the key's circuit breakers (relay.breakers).
"""

import asyncio
import logging
import math
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from django.conf import settings

from config.db import run_db
from relay import breakers, bridge, errors, upstream
from relay.background import spawn
from relay.breakers import Breakers, channel_name, key_name
from relay.bridge import Route
from relay.catalog import ChannelInfo
from relay.metering import MeteredRequest
from relay.providers.base import Adapter
from relay.redaction import redact
from relay.routing import attempt_order, backoff, key_rotation
from relay.services import upstream_key_disable

logger = logging.getLogger(__name__)

# Statuses that say "cannot serve now", not "this request is wrong": another
# channel may succeed (upstream.KEY_STATUSES: another key). A 404 from an
# upstream means a model mapping is broken, never the customer's request.
CHANNEL_STATUSES = frozenset({404, 408, 409})
# A request pinned to one channel and key (a stored response's follow-up)
# asks for something only that upstream has: its 404 is its verdict.
PINNED_CHANNEL_STATUSES = CHANNEL_STATUSES - {404}


class Meaning:
    """What an upstream's answer to one attempt means for the request (plain
    strings, not an Enum: an Enum member costs a slow lookup on every use)."""

    SERVED = "served"
    # The upstream judged the request itself: its error goes to the client.
    VERDICT = "verdict"
    # The channel's key is refused or busy: the channel's next key may serve.
    KEY_TROUBLE = "key trouble"
    # The channel cannot serve now: the next channel may.
    CHANNEL_TROUBLE = "channel trouble"


def meaning(status: int, raw: bytes, adapter: Adapter, *, pinned: bool) -> str:
    """Return what an upstream's `status` means (`raw`: an error's body)."""
    if status < 400:
        return Meaning.SERVED
    if status in upstream.KEY_STATUSES:
        return Meaning.KEY_TROUBLE
    channel_statuses = PINNED_CHANNEL_STATUSES if pinned else CHANNEL_STATUSES
    if status >= 500 or status in channel_statuses:
        return Meaning.CHANNEL_TROUBLE
    # Some providers answer a bad key with a status that does not tell.
    if adapter.channel_fault(status, raw):
        return Meaning.KEY_TROUBLE
    return Meaning.VERDICT


def revoked(status: int) -> bool:
    """Return whether key trouble means the key is refused for good (401,
    403, a provider's invalid-key answer), not only busy for now (429)."""
    return status != 429


def keep_books(
    watched: Breakers, said: str, attempt: ChannelInfo, status: int | None
) -> None:
    """Feed what one attempt's answer meant (`status` None: no answer) to
    the breakers of its channel and key."""
    if said is Meaning.CHANNEL_TROUBLE:
        watched.failure(channel_name(attempt.id))
    elif said is Meaning.KEY_TROUBLE:
        if attempt.key_id is not None:
            watched.failure(key_name(attempt.key_id), trip=revoked(status))
    else:
        # Served or judged the request: either way the channel is healthy.
        watched.success(channel_name(attempt.id))
        if said is Meaning.SERVED and attempt.key_id is not None:
            watched.success(key_name(attempt.key_id))


def _healthy_first(items: list, is_open) -> list:
    """Drop what has an open breaker, unless that is everything: then keep
    the first as the probe that finds out whether it has recovered."""
    healthy = [item for item in items if not is_open(item)]
    return healthy or items[:1]


def _channel_order(channels: tuple[ChannelInfo, ...], watched: Breakers) -> list:
    return _healthy_first(
        attempt_order(channels), lambda c: watched.is_open(channel_name(c.id))
    )


def _key_order(channel: ChannelInfo, watched: Breakers) -> list:
    return _healthy_first(
        key_rotation(channel),
        lambda k: k[0] is not None and watched.is_open(key_name(k[0])),
    )


class Failed(Exception):
    """One attempt failed: `error` is the request's if no other succeeds."""

    def __init__(self, error: errors.RelayError, *, next_channel: bool):
        self.error = error
        # The channel's trouble, not only its key's: skip its other keys.
        self.next_channel = next_channel


def retry_after(headers: httpx.Headers) -> int | None:
    """Return the seconds an upstream's answer asks to wait before a retry
    (`retry-after-ms`, else `retry-after` in seconds or as an HTTP date),
    rounded up; None if it does not say."""
    try:
        ms = float(headers.get("retry-after-ms") or "nan")
    except ValueError:
        ms = math.nan
    if math.isfinite(ms) and ms >= 0:
        return math.ceil(ms / 1000)
    text = headers.get("retry-after")
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0, math.ceil(seconds))


def _outcome(failures: list[errors.RelayError]) -> errors.RelayError:
    """Return the request's error once no attempt served it: 429 if every
    attempt was rate limited, with the longest wait any upstream asked for;
    otherwise the last error that was not a rate limit."""
    if not failures:
        return errors.upstream_unavailable()
    for failure in reversed(failures):
        if failure.code != "upstream_rate_limited":
            return failure
    waits = [
        int(failure.headers["retry-after"])
        for failure in failures
        if "retry-after" in failure.headers
    ]
    return errors.upstream_rate_limited(max(waits) if waits else None)


async def open_upstream(
    metered: MeteredRequest,
    channels: tuple[ChannelInfo, ...],
    routes: dict[int, Route],
    request: bridge.Request,
    breaker_names: list[str],
    *,
    pinned: bool = False,
) -> tuple[Route, httpx.Response]:
    """
    Return the route and the response of the first channel and key that
    serve the request, its body still unread, or raise why none did. A key's
    own trouble (429, 401, 403) moves on to the channel's next key, a
    channel's (connection error, timeout, 5xx) to the next channel, at most
    SWITCHBOARD_MAX_ATTEMPTS attempts in all. When every attempt was
    answered 429, so is the client (see _outcome). `pinned`: the request must be
    served by the one channel and key given (a stored response's follow-up).
    """
    watched = breakers.breakers()
    watched.watch(breaker_names)
    failures = []
    attempts = 0
    for channel in _channel_order(channels, watched):
        for key_id, secret in _key_order(channel, watched):
            if attempts >= settings.SWITCHBOARD_MAX_ATTEMPTS:
                raise _outcome(failures)
            if attempts:
                await asyncio.sleep(
                    backoff(attempts, settings.SWITCHBOARD_RETRY_BACKOFF_SECONDS)
                )
            attempts += 1
            attempt = channel.with_key(key_id, secret)
            found = routes[channel.id]
            try:
                return found, await _attempt(
                    metered, found, attempt, request, watched, pinned=pinned
                )
            except Failed as failed:
                failures.append(failed.error)
                if failed.next_channel:
                    break
    raise _outcome(failures)


async def _attempt(
    metered: MeteredRequest,
    found: Route,
    attempt: ChannelInfo,
    request: bridge.Request,
    watched: Breakers,
    *,
    pinned: bool,
) -> httpx.Response:
    """Send the request once, through `attempt`'s channel and key. Return the
    response that serves it; raise the upstream's verdict on the request, or
    Failed."""
    adapter = found.adapter
    if metered.upstream_started is None:
        metered.upstream_started = time.perf_counter()
    try:
        response = await upstream.send(
            found.request(attempt, request, stream=metered.stream),
            adapter.transport(),
            upstream.timeout(attempt.connect_timeout, attempt.read_timeout),
        )
    except httpx.HTTPError as exc:
        keep_books(watched, Meaning.CHANNEL_TROUBLE, attempt, None)
        raise Failed(_unreachable(attempt, metered, exc), next_channel=True) from None
    status = response.status_code
    raw = b""
    if status >= 400:
        raw = await response.aread()
        await response.aclose()
    said = meaning(status, raw, adapter, pinned=pinned)
    keep_books(watched, said, attempt, status)
    if said is Meaning.SERVED:
        metered.use(attempt)
        return response
    if said is Meaning.VERDICT:
        metered.use(attempt)
        raise errors.from_upstream(status, adapter.error_body(raw), attempt)
    logger.warning(
        "channel %s answered %s (%s)", attempt.name, status, metered.request_id
    )
    if said is Meaning.KEY_TROUBLE and attempt.key_id is not None and revoked(status):
        _disable_key(attempt, status, adapter.error_body(raw))
    raise Failed(
        errors.upstream_rate_limited(retry_after(response.headers))
        if status == 429
        else errors.upstream_unavailable(),
        next_channel=said is Meaning.CHANNEL_TROUBLE,
    )


def _unreachable(
    attempt: ChannelInfo, metered: MeteredRequest, exc: httpx.HTTPError
) -> errors.RelayError:
    """Log a channel that did not answer; return the request's error for it."""
    timed_out = is_timeout(exc)
    logger.warning(
        "channel %s %s (%s): %r",
        attempt.name,
        "timed out" if timed_out else "unreachable",
        metered.request_id,
        exc,
    )
    return errors.upstream_timeout() if timed_out else errors.upstream_unavailable()


def _disable_key(attempt: ChannelInfo, status: int, body: dict) -> None:
    """Take a key the upstream refuses out of rotation, saying why."""
    message = redact(str((body.get("error") or {}).get("message") or ""), attempt)
    message = message[:200]
    reason = f"Upstream answered {status}: {message}".strip(": ")
    logger.error(
        "channel %s: disabling upstream key %s (%s)",
        attempt.name,
        attempt.key_id,
        reason,
    )
    spawn(run_db(upstream_key_disable, key_id=attempt.key_id, reason=reason))


def is_timeout(exc: httpx.HTTPError) -> bool:
    # httpx-aiohttp maps a refused connection to ConnectTimeout: trust the
    # underlying aiohttp error when there is one.
    cause = exc.__cause__
    if cause is not None:
        return isinstance(cause, TimeoutError)
    return isinstance(exc, httpx.TimeoutException)
