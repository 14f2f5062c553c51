"""
What a request holds from its admission to its end besides money: its key's
slot among the requests in flight (relay.concurrency) and its claim on an
Idempotency-Key (relay.idempotency). Both are taken before the hold and
given back when the request ends: a whole answer once it is ready, a stream
once it has ended or its client has left.

A request of a key without a concurrency limit and without the header holds
nothing: `enter` costs it one dictionary lookup, the rest one attribute
lookup.
"""

import logging
from dataclasses import dataclass

from django.http import HttpResponse

from accounts.auth import KeyIdentity
from config.api_handler import ApiRequest
from relay import concurrency, idempotency
from relay.background import spawn

logger = logging.getLogger(__name__)

_ATTRIBUTE = "switchboard_in_flight"
# A repeat answered from its stored answer (raised by `enter`).
Replay = idempotency.Replay


@dataclass(slots=True)
class Held:
    slot: concurrency.Slot | None
    claim: idempotency.Claim | None


async def enter(request: ApiRequest, identity: KeyIdentity, request_id: str) -> None:
    """Claim the request's Idempotency-Key and take its key's slot, or
    refuse it (409, 422, 429) or raise Replay."""
    asks = idempotency.REQUEST_HEADER in request.headers
    if identity.max_in_flight is None and not asks:
        return
    claim = await idempotency.begin(request, identity, request_id)
    try:
        slot = await concurrency.acquire(identity, request_id)
    except BaseException:
        spawn(idempotency.abandon(claim))
        raise
    setattr(request, _ATTRIBUTE, Held(slot, claim))


def failed(request: ApiRequest) -> None:
    """Give back what the request held: it ended without an answer."""
    held = getattr(request, _ATTRIBUTE, None)
    if held is not None:
        # Spawned: the request may be ending because its task was cancelled.
        spawn(_give_back(held))


async def _give_back(held: Held) -> None:
    await concurrency.release(held.slot)
    await idempotency.abandon(held.claim)


async def answered(request: ApiRequest, answer: HttpResponse) -> HttpResponse:
    """Keep the answer for repeats and give back the slot, now for a whole
    answer, at the end of a stream."""
    held = getattr(request, _ATTRIBUTE, None)
    if held is None:
        return answer
    if not answer.streaming:
        await concurrency.release(held.slot)
        try:
            await idempotency.finish(held.claim, answer)
        except Exception:
            # Served and charged: the client gets its answer regardless; a
            # repeat will run again once the claim lapses.
            logger.exception("could not keep the answer for its Idempotency-Key")
        return answer
    content = answer.streaming_content
    if held.claim is not None:
        content = idempotency.recording(held.claim, answer, content)
    if held.slot is not None:
        content = _releasing(held.slot, content)
    answer.streaming_content = content
    return answer


async def _releasing(slot: concurrency.Slot, content):
    try:
        async for chunk in content:
            yield chunk
    finally:
        spawn(concurrency.release(slot))
