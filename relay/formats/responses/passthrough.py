"""
OpenAI and Azure channels serve the Responses API themselves: their answers
pass through to the client, streamed (ResponsesPassthrough) or whole
(response_from_upstream), naming the public model and giving up their usage.
"""

import orjson

from billing.pricing import TokenUsage
from relay.formats.responses.answer import BROKEN_MESSAGE, response_object
from relay.formats.responses.tools import str_or_none
from relay.formats.usage import Bill, usage_from_openai, with_bill
from relay.streaming import HeldBack, SSEBuffer, event_data, reframed, sse

_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})

# Stream events whose `delta` is text the model produced.
_DELTAS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.custom_tool_call_input.delta",
        "response.reasoning_text.delta",
        "response.reasoning_summary_text.delta",
        "response.mcp_call_arguments.delta",
    }
)


def broken_event(sequence_number: int, *, response: dict | None = None) -> bytes:
    """
    Return the response.failed event a Responses client gets when the
    upstream breaks off its stream; `response` is the last snapshot the
    upstream sent (response.created's), if any.
    """
    error = {"code": "upstream_stream_closed", "message": BROKEN_MESSAGE}
    if response is None:
        body = response_object(
            {}, response_id="", model="", status="failed", output=[], error=error
        )
    else:
        body = {**response, "status": "failed", "error": error}
    payload = {
        "type": "response.failed",
        "sequence_number": sequence_number,
        "response": body,
    }
    return sse(payload, "response.failed")


class ResponsesPassthrough(HeldBack):
    """
    Follow an upstream Responses API event stream on its way to the client:
    events pass unchanged except that, given `rename=(upstream, public)`,
    the response objects name the public model. OpenAI answers with the
    dated snapshot of the name it was asked for, so the name is replaced
    whatever the upstream says. The terminal event (completed, incomplete
    or failed) is held back in `closing` for the relay to send once it has
    settled; an `error` event passes and is remembered in `error`.
    """

    prompt_usage: TokenUsage | None = None

    def __init__(self, *, rename: tuple[str, str] | None = None):
        self._public = rename[1] if rename else None
        self.usage: TokenUsage | None = None
        self.done = False
        self.text: list[str] = []
        self.closing = b""
        self.error = ""
        self.response_id = ""
        self._sequence = -1
        self._snapshot: dict | None = None
        self._buffer = SSEBuffer()

    @property
    def broken(self) -> bytes:
        return broken_event(self._sequence + 1, response=self._snapshot)

    def feed(self, data: bytes) -> bytes:
        out = []
        for event in self._buffer.feed(data):
            if self.done:
                break
            passed = self._observe(event)
            if passed:
                out.append(passed)
        return b"".join(out)

    def end(self) -> bytes:
        # Complete only once a terminal event came.
        return b""

    def close(self, usage: TokenUsage, bill: Bill | None = None) -> bytes:
        """The terminal event, its response's usage with the cost and the
        balance after it."""
        if bill is None or not self.closing:
            return self.closing
        try:
            payload = orjson.loads(event_data(self.closing))
        except orjson.JSONDecodeError:
            return self.closing
        response = payload.get("response") if isinstance(payload, dict) else None
        if not isinstance(response, dict):
            return self.closing
        response["usage"] = with_bill(response.get("usage"), bill, stream=True)
        return reframed(self.closing, payload)

    def _observe(self, event: bytes) -> bytes:
        """Record what `event` says; return what the client gets now."""
        try:
            payload = orjson.loads(event_data(event))
        except orjson.JSONDecodeError:
            return event
        if not isinstance(payload, dict):
            return event
        sequence = payload.get("sequence_number")
        if isinstance(sequence, int) and sequence > self._sequence:
            self._sequence = sequence
        kind = payload.get("type")
        response = payload.get("response")
        if isinstance(response, dict):
            if self._public is not None and "model" in response:
                response["model"] = self._public
                event = reframed(event, payload)
            return self._lifecycle(kind, response, event)
        if kind == "error":
            self.error = (
                str_or_none(payload.get("message")) or "The upstream provider failed."
            )
        elif kind in _DELTAS and str_or_none(payload.get("delta")):
            self.text.append(payload["delta"])
        return event

    def _lifecycle(self, kind, response: dict, event: bytes) -> bytes:
        if kind == "response.created" and str_or_none(response.get("id")):
            self.response_id = response["id"]
        if kind not in _TERMINAL:
            self._snapshot = {**response, "output": []}
            return event
        if isinstance(response.get("usage"), dict):
            self.usage = usage_from_openai(response["usage"])
        if kind == "response.failed":
            error = response.get("error")
            message = (
                str_or_none(error.get("message")) if isinstance(error, dict) else None
            )
            # An `error` event before it said more than its summary does.
            self.error = self.error or message or "The upstream provider failed."
        self.done, self.closing = True, event
        return b""


def response_from_upstream(
    raw: bytes, *, rename: tuple[str, str] | None
) -> tuple[bytes, TokenUsage | None, str]:
    """Return (the body for the client, naming the public model; its usage;
    the response id) for an upstream's non-streamed Responses API answer."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw, None, ""
    if not isinstance(body, dict):
        return raw, None, ""
    usage = body.get("usage")
    usage = usage_from_openai(usage) if isinstance(usage, dict) else None
    if rename is not None and "model" in body:
        body["model"] = rename[1]
        raw = orjson.dumps(body)
    return raw, usage, str_or_none(body.get("id")) or ""
