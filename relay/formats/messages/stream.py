"""A chat completion stream as Messages API stream events (StreamFromChat)."""

from dataclasses import dataclass, field

import orjson

from billing.pricing import TokenUsage
from relay.formats.messages.answer import first_choice, stop_reason, tool_id
from relay.formats.messages.request import is_int
from relay.formats.usage import Bill, anthropic_usage, with_bill
from relay.streaming import sse

BROKEN_EVENT = sse(
    {
        "type": "error",
        "error": {
            "type": "api_error",
            "message": "The upstream provider closed the stream before it "
            "finished. You were charged for the tokens produced.",
        },
    },
    event="error",
)

# OpenAI error types (or codes) as Anthropic names them.
_ERROR_TYPES = {
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "not_found_error": "not_found_error",
    "rate_limit_error": "rate_limit_error",
    "rate_limit_exceeded": "rate_limit_error",
    "requests": "rate_limit_error",
    "tokens": "rate_limit_error",
    "overloaded_error": "overloaded_error",
    "timeout_error": "timeout_error",
}


@dataclass
class _Block:
    """One content block of the answer, opened when its turn comes."""

    kind: str  # "text" or "tool_use"
    pending: list[str] = field(default_factory=list)
    opened: bool = False
    closed: bool = False
    id: str | None = None
    name: str = ""
    arguments: str = ""
    _complete_at: int = -1  # len(arguments) last found to be whole JSON

    def complete(self) -> bool:
        """Return whether nothing more can be added to this block: text
        always, a tool call once its arguments are a whole JSON value."""
        if self.kind == "text":
            return True
        if self._complete_at == len(self.arguments):
            return True
        try:
            orjson.loads(self.arguments)
        except orjson.JSONDecodeError:
            return False
        self._complete_at = len(self.arguments)
        return True


class StreamFromChat:
    """
    Turn parsed `chat.completion.chunk` dicts into Messages API stream
    events (SSE bytes with `event:` lines, as Anthropic sends them).

    Blocks come in the order their first fragment arrives: the text, then
    each tool call. Anthropic's blocks cannot interleave, so exactly one is
    open at a time and fragments for the others wait in their own buffer.
    The open block is closed, and the next one opened with everything it
    buffered, once something follows it and nothing more can belong to it:
    text at once, a tool call when its arguments parse as a whole JSON
    value (tool calls streamed one after the other, OpenAI's way, thus
    stream live; Gemini's, whole in one delta, pass at once; interleaved
    ones are released in order). A fragment for a tool call already closed
    could only follow complete JSON and is dropped. Whatever is still
    buffered is released in order by finish().

    `reasoning_content` (DeepSeek style) is not shown: a thinking block
    needs a signature that Anthropic clients replay, and there is none. Its
    tokens are still in the usage.

    `request`, the client's payload, is not read: it is taken so that every
    format's StreamFromChat is made alike.
    """

    def __init__(self, *, request: dict | None = None, answer_id: str, model: str):
        self.model = model
        self.message_id = answer_id
        self._started = False
        self._ended = False
        self._blocks: list[_Block] = []
        self._open = 0  # position of the first block not yet closed
        self._calls: dict[object, _Block] = {}
        self._finish_reason: str | None = None
        self._refused = False

    def feed(self, chunk: dict) -> bytes:
        """Return the events for one chunk; the first call also starts the
        message. Chunks without choices (usage only) add nothing else."""
        if self._ended:
            return b""
        out = [self._start()]
        choice = first_choice(chunk)
        if choice is not None:
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self._take(delta)
            if isinstance(choice.get("finish_reason"), str):
                self._finish_reason = choice["finish_reason"]
            out += self._advance(finishing=False)
        return b"".join(out)

    def finish(self, usage: TokenUsage | None, bill: Bill | None = None) -> bytes:
        """Return the end of a stream the upstream finished: open and
        buffered blocks, the stop reason and `usage` with what `bill` says,
        message_stop."""
        if self._ended:
            return b""
        out = [self._start()]
        if not self._blocks:
            self._blocks.append(_Block("text"))
        out += self._advance(finishing=True)
        self._ended = True
        calls = any(block.kind == "tool_use" for block in self._blocks)
        reason = stop_reason(
            self._finish_reason, tool_calls=calls, refused=self._refused
        )
        out.append(
            sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": reason, "stop_sequence": None},
                    "usage": with_bill(
                        anthropic_usage(usage or TokenUsage()), bill, stream=True
                    ),
                },
                event="message_delta",
            )
        )
        out.append(sse({"type": "message_stop"}, event="message_stop"))
        return b"".join(out)

    def fail(self, error: dict) -> bytes:
        """Return the event for an error the upstream sent mid-stream (an
        OpenAI error object) in Anthropic's shape."""
        if self._ended:
            return b""
        self._ended = True
        error = error if isinstance(error, dict) else {}
        kind = next(
            (
                _ERROR_TYPES[value]
                for value in (error.get("type"), error.get("code"))
                if isinstance(value, str) and value in _ERROR_TYPES
            ),
            "api_error",
        )
        message = error.get("message")
        if not isinstance(message, str) or not message:
            message = "The upstream provider failed."
        return sse(
            {"type": "error", "error": {"type": kind, "message": message}},
            event="error",
        )

    def broken(self) -> bytes:
        """Return the event for a stream the upstream broke off."""
        if self._ended:
            return b""
        self._ended = True
        return BROKEN_EVENT

    # -- internals --

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        message = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return sse({"type": "message_start", "message": message}, "message_start")

    def _take(self, delta: dict) -> None:
        text = delta.get("content")
        if isinstance(text, str) and text:
            self._text(text)
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            self._refused = True
            self._text(refusal)
        calls = delta.get("tool_calls")
        for position, call in enumerate(calls if isinstance(calls, list) else ()):
            if isinstance(call, dict):
                self._tool_call(call, position)
        if isinstance(delta.get("function_call"), dict):  # before tool_calls
            self._tool_call({"function": delta["function_call"]}, "function_call")

    def _text(self, text: str) -> None:
        last = self._blocks[-1] if self._blocks else None
        if last is None or last.kind != "text":
            last = _Block("text")
            self._blocks.append(last)
        last.pending.append(text)

    def _tool_call(self, call: dict, position) -> None:
        key = call.get("index")
        if not is_int(key):
            # Without an index: a call is known by its id, or is the last one.
            call_id = call.get("id")
            if isinstance(call_id, str) and call_id:
                key = ("id", call_id)
            elif self._calls:
                key = next(reversed(self._calls))
            else:
                key = position
        block = self._calls.get(key)
        if block is None:
            block = self._calls[key] = _Block("tool_use")
            self._blocks.append(block)
        if isinstance(call.get("id"), str) and call["id"] and block.id is None:
            block.id = call["id"]
        function = call.get("function")
        if not isinstance(function, dict):
            return
        if isinstance(function.get("name"), str) and not block.name:
            block.name = function["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, dict):
            arguments = orjson.dumps(arguments).decode()
        if isinstance(arguments, str) and arguments and not block.closed:
            block.pending.append(arguments)
            block.arguments += arguments

    def _advance(self, *, finishing: bool) -> list[bytes]:
        out = []
        while self._open < len(self._blocks):
            index, block = self._open, self._blocks[self._open]
            if not block.opened:
                if block.kind == "tool_use" and not block.name and not finishing:
                    break  # content_block_start needs the name
                out.append(self._block_start(index, block))
            if block.pending:
                out.append(self._block_delta(index, block))
            followed = index + 1 < len(self._blocks)
            if not (finishing or (followed and block.complete())):
                break
            block.closed = True
            self._open += 1
            out.append(
                sse(
                    {"type": "content_block_stop", "index": index},
                    event="content_block_stop",
                )
            )
        return out

    def _block_start(self, index: int, block: _Block) -> bytes:
        block.opened = True
        if block.kind == "text":
            content = {"type": "text", "text": ""}
        else:
            block.id = tool_id(block.id)
            content = {
                "type": "tool_use",
                "id": block.id,
                "name": block.name,
                "input": {},
            }
        return sse(
            {"type": "content_block_start", "index": index, "content_block": content},
            event="content_block_start",
        )

    def _block_delta(self, index: int, block: _Block) -> bytes:
        piece = "".join(block.pending)
        block.pending.clear()
        if block.kind == "text":
            delta = {"type": "text_delta", "text": piece}
        else:
            delta = {"type": "input_json_delta", "partial_json": piece}
        return sse(
            {"type": "content_block_delta", "index": index, "delta": delta},
            event="content_block_delta",
        )
