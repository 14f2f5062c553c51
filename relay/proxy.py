"""
The relay core, shared by every endpoint and provider: authenticate, hold,
forward with failover, stream, settle.

A request is first prepared: checked (relay.intake), given the channels that
may serve it and a hold for its worst case, all before anything is sent. It
is then served: forwarded (relay.attempts) and answered (relay.answers).
Whatever happens from the hold on, the request is settled exactly once, as
relay.metering.ending says it ended.
"""

import asyncio
from dataclasses import dataclass
from functools import partial

from django.http import HttpResponse

from accounts.auth import KeyIdentity
from config.api_handler import ApiRequest
from relay import (
    bridge,
    catalog,
    errors,
    inflight,
    limits,
    response_cache,
    stored,
    tokens,
)
from relay.answers import streamed_answer, whole_answer
from relay.attempts import open_upstream
from relay.bridge import Route
from relay.catalog import ChannelInfo, ModelInfo
from relay.endpoints import Endpoint
from relay.intake import authenticate, forwarded_headers, json_body, priced_model
from relay.metering import MeteredRequest, ending


async def relay(
    request: ApiRequest, request_id: str, endpoint: Endpoint
) -> HttpResponse:
    """Serve one metered request to `endpoint`."""
    # relay.inflight: a concurrency slot and an Idempotency-Key claim, given
    # back when the request ends (a stream's when it has ended).
    try:
        # relay.response_cache: x-switchboard-cache checked before any hold,
        # and a stored answer served in place of the upstream's.
        cache_ttl = response_cache.asked(request)
        prepared = await prepare(request, request_id, endpoint)
        answer = await response_cache.serve(cache_ttl, prepared, serve)
    except inflight.Replay as replay:
        return replay.answer
    except BaseException:
        inflight.failed(request)
        raise
    return await inflight.answered(request, answer)


@dataclass(slots=True)
class Prepared:
    """A request that passed every check and holds its worst-case cost."""

    metered: MeteredRequest
    endpoint: Endpoint
    forwarded: bridge.Request
    # The channels that may serve it, and how each is reached.
    channels: tuple[ChannelInfo, ...]
    routes: dict[int, Route]
    breaker_names: list[str]
    # Served by its one channel and key only (a stored response's follow-up).
    pinned: bool
    # Whether the client asked for usage in its stream.
    forward_usage: bool
    # The key's minute as admission counted it (None: a key without limits).
    rate: limits.Rate | None = None


async def prepare(request: ApiRequest, request_id: str, endpoint: Endpoint) -> Prepared:
    """Check the request, find the channels that may serve it and hold its
    worst-case cost; or refuse it, holding nothing."""
    identity = await authenticate(request)
    await inflight.enter(request, identity, request_id)  # replay, 409, 422, 429
    payload = json_body(request)
    snapshot = await catalog.current()
    model, routes = priced_model(identity, payload, endpoint, snapshot)
    endpoint.validate(payload)
    stream, forward_usage = _stream_mode(payload, endpoint)
    # A follow-up of a stored response goes where that response is kept.
    pinned = endpoint.name == "responses" and bool(payload.get("previous_response_id"))
    if pinned:
        channels = await _sticky(identity, payload, routes)
    else:
        served = snapshot.channels[model.name]
        channels = tuple(channel for channel in served if channel.id in routes)
    chat_payload, channels = _as_chat(
        payload, endpoint, model, routes, channels, stream=stream
    )
    metered = _metered(request_id, identity, model, endpoint, payload, stream)
    rate = await _hold(metered, endpoint, payload)
    forwarded = bridge.Request(
        request_id=request_id,
        payload=payload,
        model=model,
        chat_payload=chat_payload,
        headers=forwarded_headers(request, endpoint),
    )
    return Prepared(
        metered=metered,
        endpoint=endpoint,
        forwarded=forwarded,
        channels=channels,
        routes=routes,
        breaker_names=snapshot.breaker_names,
        pinned=pinned,
        forward_usage=forward_usage,
        rate=rate,
    )


def _stream_mode(payload: dict, endpoint: Endpoint) -> tuple[bool, bool]:
    """Return whether to stream the answer and whether the client asked for
    usage in the stream. Usage is always asked of the upstream: it is what
    the customer is charged for."""
    if not isinstance(payload.get("stream", False), bool):
        raise errors.bad_request("'stream' must be true or false.", param="stream")
    stream = endpoint.streams and payload.get("stream") is True
    if not (stream and endpoint.asks_usage):
        return stream, False
    options = payload.get("stream_options")
    options = dict(options) if isinstance(options, dict) else {}
    payload["stream_options"] = {**options, "include_usage": True}
    return stream, options.get("include_usage") is True


async def _sticky(
    identity: KeyIdentity, payload: dict, routes: dict[int, Route]
) -> tuple[ChannelInfo, ...]:
    """
    Return the one channel, with the one key, that may serve a follow-up of
    a stored Responses API answer (previous_response_id).
    """
    previous = payload["previous_response_id"]
    found = await stored.holder(identity, previous, param="previous_response_id")
    if found.translated:
        raise errors.bad_request(
            f"previous_response_id '{previous}' cannot be continued: it was "
            "served by a channel translated from another provider's format, "
            "which keeps no state between requests. Send the whole conversation "
            "as `input` instead.",
            param="previous_response_id",
        )
    if found.channel.id not in routes:
        raise errors.bad_request(
            f"previous_response_id '{previous}' is stored where `{payload['model']}` "
            f"is not served: continue it with `{found.model}`.",
            param="previous_response_id",
        )
    return (found.channel,)


def _as_chat(
    payload: dict,
    endpoint: Endpoint,
    model: ModelInfo,
    routes: dict[int, Route],
    channels: tuple[ChannelInfo, ...],
    *,
    stream: bool,
) -> tuple[dict | None, tuple[ChannelInfo, ...]]:
    """Return the request as a chat completion if a channel needs it
    translated (None otherwise), and the channels left to serve it."""
    if not any(routes[channel.id].bridged for channel in channels):
        return None, channels
    try:
        chat = bridge.BRIDGES[endpoint.name].to_chat(payload, model)
    except errors.RelayError:
        # What chat cannot express, a native channel may still serve.
        native = tuple(c for c in channels if not routes[c.id].bridged)
        if not native:
            raise
        return None, native
    if stream:
        chat["stream_options"] = {"include_usage": True}
    return chat, channels


def _metered(
    request_id: str,
    identity: KeyIdentity,
    model: ModelInfo,
    endpoint: Endpoint,
    payload: dict,
    stream: bool,
) -> MeteredRequest:
    return MeteredRequest(
        request_id=request_id,
        identity=identity,
        model=model,
        endpoint=endpoint.name,
        stream=stream,
        prompt_estimate=endpoint.prompt_tokens(payload),
        exact_prompt=partial(endpoint.prompt_tokens, payload, tokens.count),
        prices=endpoint.unit_prices(payload, model),
        unit_prices=partial(endpoint.unit_prices, payload),
    )


async def _hold(
    metered: MeteredRequest, endpoint: Endpoint, payload: dict
) -> limits.Rate | None:
    """Count the request against its key's per-minute limits and hold its
    worst-case cost, or refuse it. Return the key's minute as counted."""
    identity = metered.identity
    rate = await limits.admit(identity, metered.prompt_estimate)
    metered.rate_counted = rate is not None
    worst = endpoint.worst_case(payload, metered.model, metered.prompt_estimate)
    try:
        await metered.reserve(worst, endpoint.hold_advice)
    except errors.RelayError as exc:
        if rate is not None:  # refused before any upstream call: no tokens used
            await limits.settle(identity, -metered.prompt_estimate)
            _tell_rate(exc.headers, rate)
        raise
    return rate


def _tell_rate(headers, rate: limits.Rate) -> None:
    """Add the key's x-ratelimit-* headers to an answer's or a refusal's
    `headers`, leaving those it already has."""
    for name, value in rate.headers().items():
        if name not in headers:
            headers[name] = value


async def serve(prepared: Prepared) -> HttpResponse:
    """Forward a prepared request and answer it. What fails before the
    answer is under way is settled here; a stream settles itself."""
    metered = prepared.metered
    try:
        found, response = await open_upstream(
            metered,
            prepared.channels,
            prepared.routes,
            prepared.forwarded,
            prepared.breaker_names,
            pinned=prepared.pinned,
        )
        if not metered.stream:
            answer = await whole_answer(
                metered, prepared.endpoint, found, response, prepared.forwarded
            )
        else:
            answer = streamed_answer(
                metered,
                found,
                response,
                prepared.forwarded,
                forward_usage=prepared.forward_usage,
            )
    except (asyncio.CancelledError, Exception) as exc:
        await metered.settle(ending(exc), usage=None)
        if prepared.rate is not None and isinstance(exc, errors.RelayError):
            _tell_rate(exc.headers, prepared.rate)
        raise
    if prepared.rate is not None:
        _tell_rate(answer.headers, prepared.rate)
    return answer
