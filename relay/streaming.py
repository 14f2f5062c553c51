"""
Server-sent events: split an upstream byte stream into events, forward them
as they complete, and capture the usage the upstream reports on the way.
"""

import orjson

from billing.pricing import TokenUsage

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


def usage_from_openai(usage: dict) -> TokenUsage:
    if "input_tokens" in usage:
        # The Images API's shape (GPT Image models): image tokens are part
        # of the input, billed at their own price.
        details = usage.get("input_tokens_details") or {}
        return TokenUsage(
            prompt=int(usage.get("input_tokens") or 0),
            image_input=int(details.get("image_tokens") or 0),
            completion=int(usage.get("output_tokens") or 0),
        )
    details = usage.get("prompt_tokens_details") or {}
    return TokenUsage(
        prompt=int(usage.get("prompt_tokens") or 0),
        cached=int(details.get("cached_tokens") or 0),
        completion=int(usage.get("completion_tokens") or 0),
    )


def openai_usage(usage: TokenUsage, *, reasoning: int | None = None) -> dict:
    """Return `usage` as OpenAI's usage object, the inverse of
    usage_from_openai (`reasoning`: the completion tokens spent thinking)."""
    body = {
        "prompt_tokens": usage.prompt,
        "completion_tokens": usage.completion,
        "total_tokens": usage.prompt + usage.completion,
        "prompt_tokens_details": {"cached_tokens": usage.cached},
    }
    if reasoning is not None:
        body["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return body


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


class OpenAIOutput:
    """What every translator to OpenAI's stream format starts with."""

    closing = DONE_EVENT
    broken = BROKEN_EVENT

    def __init__(self, *, forward_usage: bool):
        self.forward_usage = forward_usage
        self.usage: TokenUsage | None = None
        self.done = False
        self.text: list[str] = []
        self._buffer = SSEBuffer()

    def end(self) -> bytes:
        # Formats with an explicit end event are complete only once it came.
        return b""


class OpenAIStream(OpenAIOutput):
    """
    Follow an OpenAI chat completion stream: pass events through unchanged,
    drop the usage-only chunk when the client did not ask for it, and keep
    the usage and the text produced so far. The terminating event is not
    passed through: it is kept in `closing` for the relay to send last.
    """

    def feed(self, data: bytes) -> bytes:
        out = []
        for event in self._buffer.feed(data):
            if self.done:
                break
            if self._observe(event_data(event)):
                out.append(event)
        return b"".join(out)

    def _observe(self, data: bytes) -> bool:
        """Record what `data` says; return whether the client should see it."""
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
        usage = chunk.get("usage")
        if usage:
            self.usage = usage_from_openai(usage)
        choices = chunk.get("choices") or ()
        for choice in choices:
            if isinstance(choice.get("text"), str):  # legacy completions
                self.text.append(choice["text"])
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.text.append(delta["content"])
            for call in delta.get("tool_calls") or ():
                arguments = (call.get("function") or {}).get("arguments")
                if arguments:
                    self.text.append(arguments)
        return self.forward_usage or not (usage and not choices)
