"""
Server-sent events: split an upstream byte stream into events, forward them
as they complete, and capture the usage the upstream reports on the way.
"""

import orjson

from billing.pricing import TokenUsage
from relay.formats.usage import Bill, openai_usage, usage_from_openai, with_bill

DONE = b"[DONE]"
DONE_EVENT = b"data: [DONE]\n\n"
# What an OpenAI-format client receives instead of [DONE] when the upstream
# breaks off a stream: OpenAI's SDKs raise it as an APIError.
BROKEN_EVENT = (
    b"data: "
    + orjson.dumps(
        {
            "error": {
                "message": "The upstream provider closed the stream before it "
                "finished. You were charged for the tokens produced.",
                "type": "server_error",
                "param": None,
                "code": "upstream_stream_closed",
            }
        }
    )
    + b"\n\n"
)


def sse(payload, event: str | None = None) -> bytes:
    """Return one server-sent event carrying `payload` as JSON."""
    data = b"data: " + orjson.dumps(payload) + b"\n\n"
    return b"event: " + event.encode() + b"\n" + data if event else data


class SSEBuffer:
    """Reassemble events that arrive split across network reads."""

    def __init__(self):
        self._pending = b""

    def feed(self, data: bytes) -> list[bytes]:
        """Return the complete events in `data`, each with its blank line."""
        buffer = self._pending + data
        if b"\r" in buffer:
            # Normalised after joining: a read may end between CR and LF.
            buffer = buffer.replace(b"\r\n", b"\n")
            if buffer.endswith(b"\r"):
                buffer, carry = buffer[:-1], b"\r"
            else:
                carry = b""
        else:
            carry = b""
        *events, pending = buffer.split(b"\n\n")
        self._pending = pending + carry
        return [event + b"\n\n" for event in events if event]


def event_data(event: bytes) -> bytes:
    """Return the joined `data:` lines of one event."""
    lines = [
        line[5:].lstrip(b" ")
        for line in event.split(b"\n")
        if line.startswith(b"data:")
    ]
    return b"\n".join(lines)


def reframed(event: bytes, payload: dict) -> bytes:
    """Return `event` with its data replaced by `payload`, other lines kept."""
    lines = [
        line for line in event.split(b"\n") if line and not line.startswith(b"data:")
    ]
    lines.append(b"data: " + orjson.dumps(payload))
    return b"\n".join(lines) + b"\n\n"


class HeldBack:
    """
    A stream whose terminating event, as the upstream sent it (or a fixed
    one), is held back in `closing` until the request is settled.
    """

    closing: bytes

    def close(self, usage: TokenUsage, bill: Bill | None = None) -> bytes:
        return self.closing


class OpenAIOutput(HeldBack):
    """
    What every translator to OpenAI's stream format starts with. `model`:
    the public model name to answer with (None keeps the upstream's).

    When the client asked for usage (`forward_usage`), the final usage-only
    chunk is held back in `usage_chunk` with the terminating event, to be
    sent once the request is settled with its cost and the balance after it
    (relay.formats.usage.bill_fields). A stream that ended without one gets
    one made of the usage it was charged for (translators from other
    formats make theirs so), after the stream's chunk_base().
    """

    closing = DONE_EVENT
    broken = BROKEN_EVENT

    def __init__(self, *, forward_usage: bool, model: str | None = None):
        self.forward_usage = forward_usage
        self.model = model
        self.usage: TokenUsage | None = None
        self.prompt_usage: TokenUsage | None = None
        self.done = False
        self.error = ""
        self.response_id = ""
        self.text: list[str] = []
        self.usage_chunk: dict | None = None
        self.base: dict | None = None
        self._buffer = SSEBuffer()

    def end(self) -> bytes:
        # Formats with an explicit end event are complete only once it came.
        return b""

    def hold_usage(self, chunk: dict) -> bytes:
        """Hold back `chunk`, a usage-only chunk, in place of the one held
        before, which is returned to be sent now (it was not the last)."""
        held, self.usage_chunk = self.usage_chunk, chunk
        return sse(held) if held is not None else b""

    def chunk_base(self) -> dict:
        """Return the fields every chunk of this stream starts with."""
        return self.base or {"id": "", "object": "chat.completion.chunk"}

    def close(self, usage: TokenUsage, bill: Bill | None = None) -> bytes:
        if not self.forward_usage:
            return self.closing
        chunk = self.usage_chunk
        if chunk is None:
            chunk = {**self.chunk_base(), "choices": [], "usage": openai_usage(usage)}
        final = {**chunk, "usage": with_bill(chunk.get("usage"), bill, stream=True)}
        return sse(final) + self.closing


def error_message(error) -> str:
    """Return the message of an error object (any provider's), or a default."""
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"] or "Upstream error."
    return str(error or "Upstream error.")


class OpenAIStream(OpenAIOutput):
    """
    Follow an OpenAI chat completion stream: pass events through unchanged
    (but for the model's public name), drop the usage-only chunk when the
    client did not ask for it, and keep the usage and the text produced so
    far. The terminating event is not passed through: it is kept in
    `closing` for the relay to send last.
    """

    def feed(self, data: bytes) -> bytes:
        out = []
        for event in self._buffer.feed(data):
            if self.done or self.error:
                break
            payload = event_data(event)
            held = self.usage_chunk
            shown = self._observe(payload)
            if held is not None and held is self.usage_chunk and payload and shown:
                # Something followed the usage chunk held: it was not the last.
                out.append(sse(held))
                self.usage_chunk = None
            if shown is True:
                out.append(event)
            elif shown:
                out.append(shown)
        return b"".join(out)

    def _observe(self, data: bytes) -> bool | bytes:
        """
        Record what `data` says; return whether the client should see the
        event as it came, or the event to show instead.
        """
        if not data:
            return True
        if data == DONE:
            self.done = True
            return False
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return True
        if not isinstance(chunk, dict):
            return True
        if "error" in chunk:
            self.error = error_message(chunk["error"])
            return True
        if self.base is None:
            self.base = {
                name: chunk[name]
                for name in ("id", "object", "created", "model")
                if name in chunk
            }
            if self.model is not None:
                self.base["model"] = self.model
        usage = chunk.get("usage")
        if usage:
            self.usage = usage_from_openai(usage)
        choices = chunk.get("choices") or ()
        for choice in choices:
            if isinstance(choice.get("text"), str):  # legacy completions
                self.text.append(choice["text"])
            delta = choice.get("delta") or {}
            for name in ("content", "reasoning_content"):
                if isinstance(delta.get(name), str) and delta[name]:
                    self.text.append(delta[name])
            for call in delta.get("tool_calls") or ():
                arguments = (call.get("function") or {}).get("arguments")
                if arguments:
                    self.text.append(arguments)
        if usage and not choices:
            # The usage-only chunk: sent last, with the bill, if asked for.
            if not self.forward_usage:
                return False
            if self.model is not None:
                chunk["model"] = self.model
            return self.hold_usage(chunk)
        if self.model is not None and chunk.get("model") != self.model:
            return sse({**chunk, "model": self.model})
        return True
