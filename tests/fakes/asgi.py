"""The ASGI plumbing every fake upstream shares: read a body, notice a
client that leaves, and write an event (split mid-character on request)."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# The pause between the two writes of a split event: long enough for the
# relay to read them separately.
SPLIT_PAUSE = 0.002


async def read_body(receive: Receive) -> bytes | None:
    """Return the request body, or None if the client left first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def wait_disconnect(receive: Receive) -> None:
    """Return once the client has gone."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def write_event(send: Send, data: bytes, split: bool = False) -> None:
    """Send one event; with `split`, in two writes cut just after the lead
    byte of its first multi-byte character (0xC0 and up; ASCII is below
    0x80), so the reader must reassemble the character."""
    if split:
        lead = next((at for at, byte in enumerate(data) if byte >= 0xC0), None)
        if lead is not None:
            first, data = data[: lead + 1], data[lead + 1 :]
            await send({"type": "http.response.body", "body": first, "more_body": True})
            await asyncio.sleep(SPLIT_PAUSE)
    await send({"type": "http.response.body", "body": data, "more_body": True})
