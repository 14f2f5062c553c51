"""
The response cache: a repeat of a deterministic request answered from the
first answer, without an upstream call.

Opt-in, per key (ApiKey.cache_ttl, seconds) or per request with the header
`x-switchboard-cache: ttl=SECONDS` (which overrides the key's; `no`
bypasses the cache). Only deterministic requests qualify: temperature 0 or
a `seed` on /v1/chat/completions, /v1/completions, /v1/responses and
/v1/messages, and every /v1/embeddings request; a follow-up of a stored
response (previous_response_id) never does, its answer depends on state
upstream.

An entry lives in Redis under its tenant, keyed by a hash of the endpoint,
the answer's form (whole, or a stream with or without usage), the headers
passed upstream and the body as canonical JSON without `stream`,
`stream_options`, `user` and `metadata`. It holds the answer as it was sent
(a stream's events as they were sent: a stream is replayed byte for byte
but for its final usage, which tells the hit's own bill; streamed and whole
answers are cached apart), what it used and when it was stored; answers
larger than MAX_STORED_BYTES are not kept. A request takes an entry
younger than its own TTL, so `ttl=60` also means "nothing older than a
minute".

A hit still holds and settles: it is charged the model's cache hit price
(billing.models.Prices.cache_hit_usd, free by default; the plan's multiplier
applies) and its usage record, source `cache`, keeps the stored answer's
tokens and what they would have cost (`uncached_cost`), for the portal's
savings. Answers carry `x-switchboard-cache`: `hit`, `miss` (stored; a
stream once it has ended as served) or `skip` (opted in, but not
deterministic, too large, or the cache is unavailable).

While Redis is away, or without REDIS_URL, the cache is off: requests are
served as if they had not asked (config/redis_guard.py). Nothing is kept in
process memory: every relay process shares the cache.
"""

import hashlib
import logging
import time
from dataclasses import asdict, dataclass, fields, replace

import orjson
from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse

from billing.pricing import TokenUsage, UnitPrices
from config import redis_guard
from config.api_handler import ApiRequest
from config.loops import PerLoop
from relay import errors
from relay.answers import billed_answer, tell_bill
from relay.background import spawn
from relay.metering import NOTHING_USED, SERVED, MeteredRequest, ending
from relay.recording import rebilled, recorded

logger = logging.getLogger(__name__)

HEADER = "x-switchboard-cache"
HIT, MISS, SKIP = "hit", "miss", "skip"
MAX_TTL_SECONDS = 7 * 24 * 3600
MAX_STORED_BYTES = 1024 * 1024
ENDPOINTS = frozenset(
    {"chat.completions", "completions", "embeddings", "responses", "messages"}
)
ALWAYS_DETERMINISTIC = frozenset({"embeddings"})
# Fields that change how an answer is delivered or labelled, not what it says.
LEFT_OUT = ("stream", "stream_options", "user", "metadata")
_USAGE_FIELDS = tuple(f.name for f in fields(TokenUsage))
# Tests move the clock.
wall_clock = time.time
GUARD = redis_guard.Guard("response cache")
# What Store.get returns while Redis cannot be asked.
UNAVAILABLE = object()


def asked(request: ApiRequest) -> int | None:
    """
    The TTL a request asks for with `x-switchboard-cache`: seconds, 0 for
    `no`, None without the header (the key's setting applies). Checked
    before anything is held: a malformed header is refused with 400.
    """
    value = request.headers.get(HEADER)
    if value is None:
        return None
    text = value.strip().lower()
    if text == "no":
        return 0
    name, _, seconds = text.partition("=")
    if name.strip() == "ttl" and seconds.strip().isdigit():
        ttl = int(seconds.strip())
        if ttl <= MAX_TTL_SECONDS:
            return ttl
    raise errors.bad_request(
        f"The {HEADER} header must be 'no' or 'ttl=SECONDS', with at most "
        f"{MAX_TTL_SECONDS} seconds."
    )


async def serve(ttl: int | None, prepared, serve_upstream) -> HttpResponse:
    """
    Answer a prepared request (relay.proxy.Prepared) from the cache, or
    with `serve_upstream` and keep the answer if it asked for the cache.
    Costs a request that did not ask one attribute lookup.
    """
    metered = prepared.metered
    if ttl is None:
        ttl = metered.identity.cache_ttl
    if not ttl:
        return await serve_upstream(prepared)
    ttl = min(ttl, MAX_TTL_SECONDS)
    store = _store() if _qualifies(prepared) else None
    found = UNAVAILABLE
    if store is not None:
        name = _entry_name(prepared)
        found = await store.get(name)
    if found is UNAVAILABLE:
        answer = await serve_upstream(prepared)
        answer[HEADER] = SKIP
        return answer
    entry = _entry(found, ttl) if found is not None else None
    if entry is not None:
        try:
            return await _hit(prepared, entry)
        except BaseException as exc:
            await metered.settle(ending(exc), usage=None)
            raise
    answer = await serve_upstream(prepared)
    return _keep(store, name, ttl, metered, answer)


def _qualifies(prepared) -> bool:
    endpoint = prepared.endpoint.name
    if endpoint not in ENDPOINTS or prepared.pinned:
        return False
    if endpoint in ALWAYS_DETERMINISTIC:
        return True
    payload = prepared.forwarded.payload
    temperature = payload.get("temperature")
    seed = payload.get("seed")
    return (
        isinstance(temperature, int | float)
        and not isinstance(temperature, bool)
        and temperature == 0
    ) or (seed is not None and not isinstance(seed, bool))


def _entry_name(prepared) -> str:
    """The entry's Redis key: under its tenant, a hash of what decides the
    answer."""
    metered = prepared.metered
    payload = prepared.forwarded.payload
    body = {name: value for name, value in payload.items() if name not in LEFT_OUT}
    form = (
        "sse+usage" if prepared.forward_usage else "sse" if metered.stream else "json"
    )
    digest = hashlib.sha256()
    for part in (
        prepared.endpoint.name.encode(),
        form.encode(),
        orjson.dumps(prepared.forwarded.headers, option=orjson.OPT_SORT_KEYS),
        orjson.dumps(body, option=orjson.OPT_SORT_KEYS),
    ):
        digest.update(part)
        digest.update(b"\n")
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "sb")
    return f"{prefix}:respcache:{metered.identity.tenant_id}:{digest.hexdigest()}"


@dataclass(frozen=True, slots=True)
class Entry:
    """A stored answer."""

    stored_at: float
    stream: bool
    content_type: str
    usage: TokenUsage
    body: bytes


def _pack(stream: bool, content_type: str, usage: TokenUsage, body: bytes) -> bytes:
    meta = {
        "v": 1,
        "at": wall_clock(),
        "stream": stream,
        "content_type": content_type,
        "usage": asdict(usage),
    }
    return orjson.dumps(meta) + b"\n" + body


def _entry(raw: bytes, ttl: int) -> Entry | None:
    """The entry stored as `raw` if it is younger than `ttl` seconds."""
    head, _, body = raw.partition(b"\n")
    try:
        meta = orjson.loads(head)
        usage = TokenUsage(**{k: int(meta["usage"].get(k, 0)) for k in _USAGE_FIELDS})
        entry = Entry(
            float(meta["at"]),
            bool(meta["stream"]),
            str(meta["content_type"]),
            usage,
            body,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        logger.warning("unreadable response cache entry ignored")
        return None
    age = wall_clock() - entry.stored_at
    return entry if 0 <= age < ttl else None


def hit_prices(prices: UnitPrices) -> UnitPrices:
    """A model's prices for a cache hit: its cache hit price, as a flat fee
    per request, and nothing else."""
    return UnitPrices(
        input=0,
        cached_input=0,
        output=0,
        cache_write=0,
        image_input=0,
        per_image=0,
        per_request=prices.cache_hit,
        cache_write_1h=0,
        cached_image_input=0,
        cache_hit=prices.cache_hit,
    )


async def _hit(prepared, entry: Entry) -> HttpResponse:
    """Settle a hit at the cache hit price and return the stored answer."""
    metered = prepared.metered
    usage = replace(entry.usage, requests=1)
    metered.uncached_cost = metered.cost(usage)
    metered.prices = hit_prices(metered.prices)
    metered.first_byte = time.perf_counter()
    await metered.settle(SERVED, usage=usage)
    if entry.stream:
        # The events as first sent, but for their final usage: it tells this
        # hit's bill, not the first request's. The headers tell it too
        # (settled before they are sent).
        answer = StreamingHttpResponse(
            _once(rebilled(entry.body, metered.bill)),
            content_type=entry.content_type,
        )
        answer["cache-control"] = "no-cache"
        answer["x-accel-buffering"] = "no"
        if metered.bill is not None:
            tell_bill(answer, metered.bill)
    else:
        try:
            parsed = orjson.loads(entry.body)
        except orjson.JSONDecodeError:
            parsed = None
        answer = billed_answer(entry.body, parsed, metered.bill)
        answer["content-type"] = entry.content_type
    answer[HEADER] = HIT
    answer["age"] = str(max(0, int(wall_clock() - entry.stored_at)))
    if prepared.rate is not None:
        for header, value in prepared.rate.headers().items():
            answer[header] = value
    return answer


async def _once(body: bytes):
    yield body


def _served(metered: MeteredRequest) -> bool:
    return (
        metered.ended == SERVED
        and metered.used is not None
        and metered.used != NOTHING_USED
    )


def _keep(store, name: str, ttl: int, metered: MeteredRequest, answer: HttpResponse):
    """Keep a served answer (a stream once it has ended) and say so."""
    content_type = answer.get("content-type", "application/json")
    if answer.status_code != 200:
        return answer
    if answer.streaming:

        def keep(body: bytes) -> None:
            if _served(metered):
                packed = _pack(True, content_type, metered.used, body)
                spawn(store.put(name, packed, ttl))

        answer.streaming_content = recorded(
            answer.streaming_content, MAX_STORED_BYTES, keep
        )
        answer[HEADER] = MISS
        return answer
    body = answer.content
    if len(body) > MAX_STORED_BYTES or not _served(metered):
        answer[HEADER] = SKIP
        return answer
    answer[HEADER] = MISS
    packed = _pack(False, content_type, metered.used, body)
    spawn(store.put(name, packed, ttl))
    return answer


class Store:
    """The entries in Redis, skipped while Redis is away."""

    def __init__(self, url: str):
        import redis.asyncio

        self._redis = redis.asyncio.Redis.from_url(url, **redis_guard.CLIENT_OPTIONS)

    async def get(self, name: str):
        """The entry stored under `name`, None, or UNAVAILABLE."""
        if GUARD.down_until and GUARD.paused():
            return UNAVAILABLE
        try:
            found = await self._redis.get(name)
        except redis_guard.ERRORS as exc:
            GUARD.failed(exc)
            return UNAVAILABLE
        if GUARD.down_until:
            GUARD.recovered()
        return found

    async def put(self, name: str, value: bytes, ttl: int) -> None:
        if GUARD.down_until and GUARD.paused():
            return
        try:
            # Redis forgets it a little after the last request could take it.
            await self._redis.set(name, value, ex=ttl + 1)
        except redis_guard.ERRORS as exc:
            GUARD.failed(exc)

    async def close(self) -> None:
        await self._redis.aclose()


_stores = PerLoop(lambda: Store(settings.REDIS_URL))
close_store = _stores.close


def _store() -> Store | None:
    """This event loop's store; None without Redis."""
    return _stores.get() if settings.REDIS_URL else None


def forget() -> None:
    """Drop this process's clients and any outage it saw (tests)."""
    _stores.forget()
    GUARD.reset()
