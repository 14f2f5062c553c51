"""
Keeping a stream as it is sent, to replay it later: what Idempotency-Key
replays (relay.idempotency) and the response cache (relay.response_cache)
share. Only a stream that ended as its format ends a served answer, within
a size limit, is kept.
"""

from collections.abc import AsyncIterator, Callable

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
