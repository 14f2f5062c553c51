"""
Keeping a stream as it is sent, to replay it later: what Idempotency-Key
replays (relay.idempotency) and the response cache (relay.response_cache)
share. Only a stream that ended as its format ends a served answer, within
a size limit, is kept. A replay for another request (a cache hit) tells
that request's bill in the final usage (rebilled).
"""

from collections.abc import AsyncIterator, Callable
from dataclasses import fields

import orjson

from relay.formats.usage import Bill, with_bill
from relay.streaming import event_data, reframed

# The last event of a stream that ended as its format ends a served answer.
STREAM_ENDS = (
    b"[DONE]",
    b"message_stop",
    b"response.completed",
    b"response.incomplete",
)


def ended_as_served(chunks: list[bytes]) -> bool:
    last = next((chunk for chunk in reversed(chunks) if chunk.strip()), b"")
    events = [event for event in last.split(b"\n\n") if event.strip()]
    return bool(events) and any(end in events[-1] for end in STREAM_ENDS)


async def recorded(
    content: AsyncIterator[bytes], limit: int, keep: Callable[[bytes], None]
) -> AsyncIterator[bytes]:
    """Pass `content` through; once it has ended as served, and in no more
    than `limit` bytes, give `keep` the whole of it."""
    kept: list[bytes] | None = []
    size = 0
    ended = False
    try:
        async for chunk in content:
            if kept is not None:
                size += len(chunk)
                if size > limit:
                    kept = None
                else:
                    kept.append(chunk)
            yield chunk
        ended = True
    finally:
        if ended and kept and ended_as_served(kept):
            keep(b"".join(kept))


# What relay.formats.usage.bill_fields may have added to a usage object.
_BILL_FIELDS = frozenset(field.name for field in fields(Bill))
_FINAL_RESPONSES = frozenset({"response.completed", "response.incomplete"})


def _final_usage_holder(payload) -> dict | None:
    """The object whose `usage` is a stream's final usage, if `payload` (one
    event's data) is the event that carries it: the usage-only chunk (chat
    completions, completions), response.completed or .incomplete
    (Responses), message_delta (Messages)."""
    if not isinstance(payload, dict):
        return None
    kind = payload.get("type")
    if kind == "message_delta":
        return payload
    if kind in _FINAL_RESPONSES:
        response = payload.get("response")
        return response if isinstance(response, dict) else None
    return payload if isinstance(payload.get("usage"), dict) else None


def rebilled(events: bytes, bill: Bill | None) -> bytes:
    """
    Return a recorded stream with the bill its final usage told replaced by
    `bill`: a replay for another request tells that request's bill. Every
    other event is kept byte for byte. The final usage is the last event
    that names `usage` (events after it never do). The relay wrote that
    event with orjson when it told a bill, so reading and writing it again
    changes nothing but the bill's fields (an upstream's own event, passed
    on when no bill was known, is written again in orjson's spacing).
    """
    parts = events.split(b"\n\n")
    for index in range(len(parts) - 1, -1, -1):
        if b'"usage"' not in parts[index]:
            continue
        try:
            payload = orjson.loads(event_data(parts[index]))
        except orjson.JSONDecodeError:
            return events
        holder = _final_usage_holder(payload)
        if holder is None:
            return events
        usage = holder.get("usage")
        if isinstance(usage, dict):
            usage = {k: v for k, v in usage.items() if k not in _BILL_FIELDS}
        holder["usage"] = with_bill(usage, bill, stream=True)
        parts[index] = reframed(parts[index], payload).removesuffix(b"\n\n")
        return b"\n\n".join(parts)
    return events
