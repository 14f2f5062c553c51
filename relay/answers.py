"""
The upstream's answer on its way to the client: read whole, or streamed as
it arrives; either way settled before the client has all of it, so that it
tells what it cost.

A whole answer carries its cost (at the tenant's plan, before the balance
caps the charge) in the x-switchboard-cost header and as `cost` in its usage
object; the wallet's balance after the charge in x-switchboard-balance; and,
when the balance capped the charge, what was charged in
x-switchboard-charged (and `charged` beside `cost`). A stream's headers are
sent before it is charged: its final usage (the usage-only chunk, when the
client asked for usage, response.completed's, message_delta's) carries
`cost`, `charged` when capped, and `balance` instead (relay.formats.usage).
All amounts are USD with nine decimals, exact to the nano-USD.
"""

import asyncio
import logging
import time
from dataclasses import replace

import httpx
import orjson
from django.http import HttpResponse, StreamingHttpResponse

from billing.money import usd_string
from billing.pricing import TokenUsage
from relay import bridge, errors, tokens
from relay.attempts import is_timeout
from relay.bridge import Route
from relay.endpoints import Endpoint
from relay.formats.usage import Bill, with_bill
from relay.metering import MeteredRequest, ending
from relay.providers.base import ModelNames, StreamTranslator
from relay.redaction import redact

logger = logging.getLogger(__name__)

COST_HEADER = "x-switchboard-cost"
CHARGED_HEADER = "x-switchboard-charged"
BALANCE_HEADER = "x-switchboard-balance"


def _names(metered: MeteredRequest) -> ModelNames:
    return ModelNames(
        metered.model.name, metered.channel.upstream_model(metered.model.name)
    )


async def whole_answer(
    metered: MeteredRequest,
    endpoint: Endpoint,
    found: Route,
    response: httpx.Response,
    request: bridge.Request,
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
            raw, request, _names(metered), metered.exact_prompt
        )
        answer = orjson.loads(body)
        if endpoint.name == "responses":
            found_id = answer.get("id") if isinstance(answer, dict) else None
            metered.response_id = found_id if isinstance(found_id, str) else ""
    except (orjson.JSONDecodeError, ValueError, TypeError, AttributeError):
        logger.warning("unreadable upstream answer (%s)", metered.request_id)
        raise errors.upstream_unavailable() from None
    metered.first_byte = time.perf_counter()
    metered.attribute(request.payload)
    await metered.settle(ending(), usage=usage, estimated=estimated)
    return billed_answer(body, answer, metered.bill)


def billed_answer(body: bytes, answer, bill: Bill | None) -> HttpResponse:
    """Return the whole answer `body` (parsed: `answer`) telling `bill`."""
    if bill is None:
        return HttpResponse(body, content_type="application/json")
    if isinstance(answer, dict):
        answer["usage"] = with_bill(answer.get("usage"), bill)
        body = orjson.dumps(answer)
    response = HttpResponse(body, content_type="application/json")
    tell_bill(response, bill)
    return response


def tell_bill(response: HttpResponse, bill: Bill) -> None:
    """Put `bill` in the headers of `response`."""
    response[COST_HEADER] = usd_string(bill.cost)
    if bill.capped:
        response[CHARGED_HEADER] = usd_string(bill.charged)
    if bill.balance is not None:
        response[BALANCE_HEADER] = usd_string(bill.balance)


def streamed_answer(
    metered: MeteredRequest,
    found: Route,
    response: httpx.Response,
    request: bridge.Request,
    *,
    forward_usage: bool,
) -> StreamingHttpResponse:
    """Return the answer that streams the upstream's as it arrives."""
    translator = found.stream(request, _names(metered), forward_usage=forward_usage)
    metered.attribute(request.payload)
    streaming = StreamingHttpResponse(
        relay_stream(metered, translator, response),
        content_type="text/event-stream",
    )
    streaming["cache-control"] = "no-cache"
    streaming["x-accel-buffering"] = "no"
    return streaming


def produced_usage(
    metered: MeteredRequest, translator: StreamTranslator
) -> tuple[TokenUsage, bool]:
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
        return TokenUsage(prompt=metered.exact_prompt(), completion=produced), True
    return replace(reported, completion=max(reported.completion, produced)), True


async def relay_stream(
    metered: MeteredRequest, translator: StreamTranslator, response: httpx.Response
):
    """
    Yield the upstream stream to the client as it arrives. The closing event
    is held back until the request is settled, so a client that has read the
    whole stream also sees its charge. An upstream's own error event is
    passed on as the stream's end; a stream that breaks off gets the relay's.
    """
    failure = None
    try:
        try:
            async for data in response.aiter_raw():
                out = translator.feed(data)
                if out and translator.error:
                    # The upstream's own error event, passed on: redacted of
                    # its keys and host as every upstream error text is.
                    out = redact(out.decode(errors="replace"), metered.channel).encode()
                if out:
                    if metered.first_byte is None:
                        metered.first_byte = time.perf_counter()
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
            logger.warning("upstream stream broke (%s): %r", metered.request_id, exc)
    except (asyncio.CancelledError, GeneratorExit, Exception) as exc:
        failure = exc  # the client left, or the relay failed
        raise
    finally:
        await response.aclose()
        usage, estimated = produced_usage(metered, translator)
        metered.response_id = translator.response_id
        ended = ending(
            failure,
            answered=True,
            upstream_error=translator.error,
            cut_short=not translator.done,
        )
        await metered.settle(ended, usage=usage, estimated=estimated)
    if translator.done:
        yield translator.close(usage, metered.bill)
    elif not translator.error:
        yield translator.broken
