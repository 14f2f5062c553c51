"""
The relay core, shared by every endpoint and provider: authenticate, hold,
forward with failover, stream, settle.
"""

import asyncio
import logging
import time
from dataclasses import replace
from functools import partial

import httpx
import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone

from accounts.auth import KeyIdentity, identify
from billing.pricing import TokenUsage
from config.db import run_db
from relay import bridge, catalog, errors, health, limits, stored, tokens, upstream
from relay.background import spawn
from relay.bridge import Route
from relay.catalog import Catalog, ChannelInfo, ModelInfo
from relay.endpoints import Endpoint
from relay.metering import Call
from relay.models import UsageRecord
from relay.providers.base import ModelNames, StreamTranslator
from relay.routing import attempt_order, backoff, key_rotation
from relay.services import upstream_key_disable

logger = logging.getLogger(__name__)

Status = UsageRecord.Status

# Longer names are no model's: refused rather than echoed back in full.
MAX_MODEL_NAME = 256

# Statuses that say "cannot serve now", not "this request is wrong": another
# channel may succeed (upstream.KEY_STATUSES: another key). A 404 from an
# upstream means a model mapping is broken, never the customer's request.
CHANNEL_STATUSES = frozenset({404, 408, 409})


def api_key_from(request: HttpRequest) -> str:
    # META, not request.headers: the hot path need not build every header.
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.META.get("HTTP_X_API_KEY", "").strip()


async def authenticate(request: HttpRequest) -> KeyIdentity:
    secret = api_key_from(request)
    if not secret:
        raise errors.unauthorized(
            "You didn't provide an API key. Send it as 'Authorization: Bearer "
            "sk-sb-...'.",
            code="missing_api_key",
        )
    identity = await identify(secret)
    if identity is None:
        raise errors.unauthorized("Incorrect API key provided.")
    if identity.revoked:
        raise errors.unauthorized(
            "This API key has been revoked.", code="api_key_revoked"
        )
    if identity.expires_at is not None and identity.expires_at <= timezone.now():
        raise errors.unauthorized("This API key has expired.", code="api_key_expired")
    if not identity.tenant_active:
        raise errors.forbidden(
            "This account is suspended. Contact support.", code="account_suspended"
        )
    limits.check_address(identity, request.META.get("REMOTE_ADDR"))
    return identity


def forwarded_headers(request: HttpRequest, endpoint: Endpoint) -> dict:
    """Return the client's headers that `endpoint` passes to its upstream."""
    return {
        name: request.headers[name]
        for name in endpoint.forwarded_headers
        if name in request.headers
    }


def json_body(request: HttpRequest) -> dict:
    try:
        payload = orjson.loads(request.body)
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raise errors.RelayError(
            413,
            f"The request body is larger than the {limit} bytes accepted.",
            code="request_too_large",
        ) from None
    except orjson.JSONDecodeError:
        raise errors.bad_request(
            "We could not parse the JSON body of your request. Send valid JSON."
        ) from None
    if not isinstance(payload, dict):
        raise errors.bad_request("The request body must be a JSON object.")
    return payload


def priced_model(
    identity: KeyIdentity, payload: dict, endpoint: Endpoint, snapshot: Catalog
) -> tuple[ModelInfo, dict[int, Route]]:
    """Return the requested model and how each channel serving it is reached
    by `endpoint`, or refuse."""
    name = payload.get("model")
    if not isinstance(name, str) or not name:
        raise errors.bad_request("you must provide a model parameter", param="model")
    if len(name) > MAX_MODEL_NAME:
        raise errors.bad_request(
            f"'model' is longer than {MAX_MODEL_NAME} characters.", param="model"
        )
    if identity.allowed_models and name not in identity.allowed_models:
        raise errors.forbidden(
            f"This API key is not allowed to use the model `{name}`.",
            code="model_not_allowed",
        )
    model = snapshot.models.get(name)
    if model is not None:
        model = model.current()
    if model is not None and not endpoint.serves(model):
        raise endpoint.unsupported(model)
    served = snapshot.channels.get(name, ())
    if model is None or not served:
        raise errors.model_not_found(name)
    routes = {
        channel.id: found
        for channel in served
        if (found := bridge.route(endpoint, channel)) is not None
    }
    if not routes:
        raise errors.model_not_supported(
            f"The model `{name}` is not served on {endpoint.path_shown}."
        )
    return model, routes


def _healthy_first(items: list, is_open) -> list:
    """Drop what has an open breaker, unless that is everything: then keep
    the first as the probe that finds out whether it has recovered."""
    healthy = [item for item in items if not is_open(item)]
    return healthy or items[:1]


async def open_upstream(
    call: Call,
    channels: tuple[ChannelInfo, ...],
    routes: dict[int, Route],
    request: bridge.Request,
    breaker_names: list[str],
    *,
    pinned: bool = False,
) -> tuple[Route, httpx.Response]:
    """
    Send the request to the first channel and key that accept it; nothing has
    reached the client yet, so retrying is safe. A key's own trouble (429,
    401, 403) moves on to the channel's next key; a channel's (connection
    error, timeout, 5xx) to the next channel. Every outcome feeds the
    channel's and the key's circuit breakers. `pinned`: the request must be
    served by the one channel and key given (a stored response's follow-up),
    so the upstream's 404 is its verdict (no such response), not a fault.
    """
    breakers = health.breakers()
    breakers.watch(breaker_names)
    failure = errors.upstream_unavailable()
    attempts = 0
    channel_statuses = CHANNEL_STATUSES - {404} if pinned else CHANNEL_STATUSES
    order = _healthy_first(
        attempt_order(channels),
        lambda c: breakers.is_open(health.channel_name(c.id)),
    )
    for channel in order:
        found = routes[channel.id]
        adapter = found.adapter
        channel_breaker = health.channel_name(channel.id)
        keys = _healthy_first(
            key_rotation(channel),
            lambda k: k[0] is not None and breakers.is_open(health.key_name(k[0])),
        )
        for key_id, secret in keys:
            if attempts >= settings.SWITCHBOARD_MAX_ATTEMPTS:
                raise failure
            if attempts:
                await asyncio.sleep(
                    backoff(attempts, settings.SWITCHBOARD_RETRY_BACKOFF_SECONDS)
                )
            attempts += 1
            key_breaker = health.key_name(key_id) if key_id is not None else None
            attempt = replace(channel, api_key=secret, key_id=key_id)
            try:
                response = await upstream.send(
                    found.request(attempt, request, stream=call.stream),
                    adapter.transport(),
                    upstream.timeout(channel.connect_timeout, channel.read_timeout),
                )
            except httpx.HTTPError as exc:
                timed_out = is_timeout(exc)
                logger.warning(
                    "channel %s %s (%s): %r",
                    channel.name,
                    "timed out" if timed_out else "unreachable",
                    call.request_id,
                    exc,
                )
                breakers.failure(channel_breaker)
                failure = (
                    errors.upstream_timeout()
                    if timed_out
                    else errors.upstream_unavailable()
                )
                break
            status = response.status_code
            refused_key = status in upstream.KEY_STATUSES
            if refused_key or status in channel_statuses or status >= 500:
                raw = await response.aread()
                await response.aclose()
                logger.warning(
                    "channel %s answered %s (%s)", channel.name, status, call.request_id
                )
                failure = errors.upstream_unavailable()
                if not refused_key:
                    breakers.failure(channel_breaker)
                    break
            elif status >= 400:
                raw = await response.aread()
                await response.aclose()
                refused_key = adapter.channel_fault(status, raw)
                if not refused_key:
                    # The upstream is healthy; it judged the request.
                    breakers.success(channel_breaker)
                    call.use(attempt)
                    raise errors.from_upstream(status, adapter.error_body(raw))
            if refused_key:
                if key_breaker is not None:
                    revoked = status != 429
                    breakers.failure(key_breaker, trip=revoked)
                    if revoked:
                        _disable_key(key_id, channel, status, adapter.error_body(raw))
                continue
            breakers.success(channel_breaker)
            if key_breaker is not None:
                breakers.success(key_breaker)
            call.use(attempt)
            return found, response
    raise failure


def _disable_key(key_id: int, channel, status: int, body: dict) -> None:
    """Take a key the upstream refuses out of rotation, saying why."""
    message = str((body.get("error") or {}).get("message") or "")[:200]
    reason = f"Upstream answered {status}: {message}".strip(": ")
    logger.error(
        "channel %s: disabling upstream key %s (%s)", channel.name, key_id, reason
    )
    spawn(run_db(upstream_key_disable, key_id=key_id, reason=reason))


def is_timeout(exc: httpx.HTTPError) -> bool:
    # httpx-aiohttp maps a refused connection to ConnectTimeout: trust the
    # underlying aiohttp error when there is one.
    cause = exc.__cause__
    if cause is not None:
        return isinstance(cause, TimeoutError)
    return isinstance(exc, httpx.TimeoutException)


def _names(call: Call) -> ModelNames:
    return ModelNames(call.model.name, call.channel.upstream_model(call.model.name))


async def complete(
    call: Call, endpoint: Endpoint, found: Route, response: httpx.Response, request
) -> HttpResponse:
    """Read a whole upstream answer, settle it and return it."""
    try:
        raw = await response.aread()
    except httpx.HTTPError as exc:
        if is_timeout(exc):
            raise errors.upstream_timeout() from None
        raise errors.upstream_unavailable() from None
    finally:
        await response.aclose()
    try:
        body, usage, estimated = found.answer(
            raw, request, _names(call), call.exact_prompt
        )
        if endpoint.name == "responses":
            call.response_id = endpoint.answer_id(body)
    except (orjson.JSONDecodeError, ValueError, TypeError, AttributeError):
        logger.warning("unreadable upstream answer (%s)", call.request_id)
        raise errors.upstream_unavailable() from None
    call.first_byte = time.perf_counter()
    await call.settle(
        status=Status.OK, http_status=200, usage=usage, estimated=estimated
    )
    return HttpResponse(body, content_type="application/json")


def produced_usage(call: Call, translator: StreamTranslator) -> tuple[TokenUsage, bool]:
    """
    Return what a stream used, and whether that is an estimate: the
    upstream's figures when it reported them; otherwise the input it
    reported before the end (Anthropic's message_start) or the prompt's
    count, and the output estimated from the text it produced.
    """
    if translator.usage is not None:
        return translator.usage, False
    produced = tokens.count("".join(translator.text))
    reported = translator.prompt_usage
    if reported is None:
        return TokenUsage(prompt=call.exact_prompt(), completion=produced), True
    return replace(reported, completion=max(reported.completion, produced)), True


async def relay_stream(call: Call, translator: StreamTranslator, response):
    """
    Yield the upstream stream to the client as it arrives. The closing event
    is held back until the request is settled, so a client that has read the
    whole stream also sees its charge. An upstream's own error event is
    passed on as the stream's end; a stream that breaks off gets the relay's.
    """
    status, error = Status.OK, ""
    try:
        try:
            async for data in response.aiter_raw():
                out = translator.feed(data)
                if out:
                    if call.first_byte is None:
                        call.first_byte = time.perf_counter()
                    yield out
                if translator.done:
                    break
            else:
                # The body ended cleanly: a translator whose format has no
                # end event (Gemini) may finish from what it has seen.
                out = translator.end()
                if out:
                    yield out
        except httpx.HTTPError as exc:
            logger.warning("upstream stream broke (%s): %r", call.request_id, exc)
        if translator.error:
            status, error = Status.UPSTREAM_ERROR, translator.error
        elif not translator.done:
            status, error = Status.UPSTREAM_CLOSED, "upstream closed the stream early"
    except (asyncio.CancelledError, GeneratorExit):
        status, error = Status.CLIENT_CLOSED, "client disconnected"
        raise
    finally:
        await response.aclose()
        usage, estimated = produced_usage(call, translator)
        call.response_id = translator.response_id
        await call.settle(
            status=status,
            http_status=200,
            usage=usage,
            estimated=estimated,
            error=error,
        )
    if translator.done:
        yield translator.close(usage)
    elif not translator.error:
        yield translator.broken


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


async def relay(
    request: HttpRequest, request_id: str, endpoint: Endpoint
) -> HttpResponse:
    """Serve one metered request to `endpoint`."""
    identity = await authenticate(request)
    payload = json_body(request)
    snapshot = await catalog.current()
    model, routes = priced_model(identity, payload, endpoint, snapshot)
    endpoint.validate(payload)
    if not isinstance(payload.get("stream", False), bool):
        raise errors.bad_request("'stream' must be true or false.", param="stream")
    stream = endpoint.streams and payload.get("stream") is True
    forward_usage = False
    if stream and endpoint.asks_usage:
        options = payload.get("stream_options")
        options = dict(options) if isinstance(options, dict) else {}
        forward_usage = options.get("include_usage") is True
        # Always ask for usage: it is what the customer is charged for.
        payload["stream_options"] = {**options, "include_usage": True}
    pinned = None
    if endpoint.name == "responses" and payload.get("previous_response_id"):
        pinned = await _sticky(identity, payload, routes)
    channels = pinned or tuple(
        channel for channel in snapshot.channels[model.name] if channel.id in routes
    )
    chat_payload = None
    if any(routes[channel.id].bridged for channel in channels):
        try:
            chat_payload = bridge.BRIDGES[endpoint.name].to_chat(payload, model)
        except errors.RelayError:
            # What chat cannot express, a native channel may still serve.
            channels = tuple(c for c in channels if not routes[c.id].bridged)
            if not channels:
                raise
        else:
            if stream:
                chat_payload["stream_options"] = {"include_usage": True}
    call = Call(
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
    call.rate_counted = await limits.admit(identity, call.prompt_estimate)
    worst = endpoint.worst_case(payload, model, call.prompt_estimate)
    try:
        await call.reserve(worst, endpoint.hold_advice)
    except errors.RelayError:
        if call.rate_counted:  # refused before any upstream call: no tokens used
            await limits.settle(identity, -call.prompt_estimate)
        raise
    forwarded = bridge.Request(
        request_id=request_id,
        payload=payload,
        model=model,
        chat_payload=chat_payload,
        headers=forwarded_headers(request, endpoint),
    )
    try:
        found, response = await open_upstream(
            call,
            channels,
            routes,
            forwarded,
            snapshot.breaker_names,
            pinned=pinned is not None,
        )
        if not stream:
            return await complete(call, endpoint, found, response, forwarded)
        translator = found.stream(forwarded, _names(call), forward_usage=forward_usage)
    except errors.RelayError as exc:
        status = Status.REJECTED if exc.status < 500 else Status.UPSTREAM_ERROR
        await call.settle(
            status=status, http_status=exc.status, usage=None, error=exc.message
        )
        raise
    except asyncio.CancelledError:
        await call.settle(
            status=Status.CLIENT_CLOSED,
            http_status=499,
            usage=None,
            error="client disconnected",
        )
        raise
    except Exception:
        await call.settle(
            status=Status.UPSTREAM_ERROR,
            http_status=500,
            usage=None,
            error="internal error",
        )
        raise
    streaming = StreamingHttpResponse(
        relay_stream(call, translator, response),
        content_type="text/event-stream",
    )
    streaming["cache-control"] = "no-cache"
    streaming["x-accel-buffering"] = "no"
    return streaming
