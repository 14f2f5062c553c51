"""
Server-sent events: split an upstream byte stream into events, forward them
as they complete, and capture the usage the upstream reports on the way.
"""

import orjson

from billing.pricing import TokenUsage
from relay.formats.usage import usage_from_openai

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


class HeldBack:
    """
    A stream whose terminating event, as the upstream sent it (or a fixed
    one), is held back in `closing` until the request is settled.
    """

    closing: bytes

    def close(self, usage: TokenUsage) -> bytes:
        return self.closing


class OpenAIOutput(HeldBack):
    """
    What every translator to OpenAI's stream format starts with. `model`:
    the public model name to answer with (None keeps the upstream's).
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
        self._buffer = SSEBuffer()

    def end(self) -> bytes:
        # Formats with an explicit end event are complete only once it came.
        return b""


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
            shown = self._observe(event_data(event))
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
        if not (self.forward_usage or not (usage and not choices)):
            return False
        if self.model is not None and chunk.get("model") != self.model:
            return sse({**chunk, "model": self.model})
        return True
