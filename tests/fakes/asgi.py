"""The ASGI plumbing every fake upstream shares: read a body, notice a
client that leaves, and write an event (split mid-character on request)."""

import asyncio
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

Recorded = TypeVar("Recorded")

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


class StreamRecorder(Generic[Recorded]):
    """
    What a fake received, and where its clients left streams early: written
    from the server's thread, read from the test's. A fake calls
    `_start_recording()` when made, `_forget_recorded()` on reset, `_record()`
    for each request and `_record_abandoned()` when a client leaves a stream.
    """

    def _start_recording(self, limit: int = 1000) -> None:
        self._lock = threading.Lock()
        self._requests: deque[Recorded] = deque(maxlen=limit)
        self._aborted: list[int] = []

    def _forget_recorded(self) -> None:
        with self._lock:
            self._requests.clear()
            self._aborted.clear()

    def _record(self, request: Recorded) -> None:
        with self._lock:
            self._requests.append(request)

    def _record_abandoned(self, sent: int) -> None:
        """Note a stream the client left after `sent` content events."""
        with self._lock:
            self._aborted.append(sent)

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    @property
    def aborted_streams(self) -> int:
        """Return how many streams the client left before their last event."""
        with self._lock:
            return len(self._aborted)

    @property
    def aborted_after(self) -> list[int]:
        """Return the content events (Anthropic's content deltas, Gemini's
        chunks) each abandoned stream had sent, in order."""
        with self._lock:
            return list(self._aborted)

    @property
    def last_request(self) -> Recorded | None:
        with self._lock:
            return self._requests[-1] if self._requests else None
