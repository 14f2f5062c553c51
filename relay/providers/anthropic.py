"""
Anthropic's Messages API behind the OpenAI chat-completions wire format.

Requests are rewritten field by field: Anthropic refuses fields it does not
know (`stream_options`, `n`, `response_format`...), so only what has a
Messages equivalent is sent. Answers and streams are rewritten into
`chat.completion` objects and `chat.completion.chunk` events.
"""

import base64
import time
import urllib.parse

import httpx
import orjson

from billing.pricing import TokenUsage
from relay import upstream
from relay.catalog import ChannelInfo
from relay.endpoints import Endpoint
from relay.formats.messages import BROKEN_EVENT, tool_input
from relay.formats.usage import (
    Bill,
    openai_usage,
    usage_from_anthropic,
    with_bill,
)
from relay.providers.base import ChatAdapter, ModelNames
from relay.streaming import (
    HeldBack,
    OpenAIOutput,
    SSEBuffer,
    error_message,
    event_data,
    sse,
)

ANTHROPIC_VERSION = "2023-06-01"
# Anthropic requires max_tokens; OpenAI clients usually leave it out. Every
# Claude model since Claude 3 can produce at least this many tokens.
DEFAULT_MAX_TOKENS = 4096

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# Thinking budgets for OpenAI's reasoning_effort. Anthropic's minimum budget
# is 1024 tokens, and a budget must leave room under max_tokens.
THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}
MIN_THINKING_BUDGET = 1024

# OpenAI fields Anthropic reads under the same name and meaning. `top_k` is
# not OpenAI's, but clients aiming at Claude send it and it means the same.
_SAME_NAME = ("temperature", "top_p", "top_k")


def finish_reason(stop_reason: str | None) -> str | None:
    if stop_reason is None:
        return None
    return FINISH_REASONS.get(stop_reason, "stop")


# -- request -------------------------------------------------------------


def _media_source(url: str) -> dict:
    """Return an Anthropic `source` for an OpenAI image or file URL."""
    if not url.startswith("data:"):
        return {"type": "url", "url": url}
    header, _, data = url[5:].partition(",")
    media_type, *params = header.split(";")
    if "base64" not in params:
        # A percent-encoded data URL; Anthropic only takes base64.
        data = base64.b64encode(urllib.parse.unquote_to_bytes(data)).decode()
    return {"type": "base64", "media_type": media_type, "data": data}


def _block(part) -> dict | None:
    """Translate one OpenAI content part; None for parts with no equivalent."""
    if isinstance(part, str):
        part = {"type": "text", "text": part}
    if not isinstance(part, dict):
        return None
    kind = part.get("type")
    if kind in ("text", "refusal"):
        text = part.get("text") or part.get("refusal") or ""
        # Anthropic refuses empty text blocks.
        if not text:
            return None
        block = {"type": "text", "text": text}
    elif kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str) or not url:
            return None
        block = {"type": "image", "source": _media_source(url)}
    elif kind == "file":
        data = (part.get("file") or {}).get("file_data")
        if not isinstance(data, str) or not data.startswith("data:"):
            return None
        block = {"type": "document", "source": _media_source(data)}
    else:
        return None
    # Prompt caching markers, as OpenAI-format clients of Claude send them.
    if isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]
    return block


def _blocks(content) -> list[dict]:
    if content is None:
        return []
    parts = content if isinstance(content, list) else [content]
    return [block for block in map(_block, parts) if block is not None]


def _tool_use_blocks(tool_calls) -> list[dict]:
    blocks = []
    for call in tool_calls if isinstance(tool_calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id") or "",
                "name": function.get("name") or "",
                "input": tool_input(function.get("arguments")),
            }
        )
    return blocks


def _tool_result(message: dict) -> dict:
    content = message.get("content")
    result = {"type": "tool_result", "tool_use_id": message.get("tool_call_id") or ""}
    if isinstance(content, list):
        blocks = _blocks(content)
        if blocks:
            result["content"] = blocks
    elif content:
        result["content"] = str(content)
    return result


def translate_messages(messages: list) -> tuple[list[dict], list[dict]]:
    """
    Return the system text blocks and the Messages-API turns for OpenAI
    `messages`. Anthropic wants user and assistant turns to alternate, so
    consecutive messages of one role (tool results are user turns) are merged.
    """
    system: list[dict] = []
    turns: list[dict] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_blocks(message.get("content")))
            continue
        if role == "user":
            blocks = _blocks(message.get("content"))
        elif role == "assistant":
            blocks = _blocks(message.get("content"))
            blocks += _tool_use_blocks(message.get("tool_calls"))
        elif role == "tool":
            role, blocks = "user", [_tool_result(message)]
        else:
            continue
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _system(blocks: list[dict]):
    """Return `system` as a string, or as blocks when they carry cache marks."""
    if any("cache_control" in block for block in blocks):
        return [block for block in blocks if block["type"] == "text"]
    return "\n\n".join(block["text"] for block in blocks if block["type"] == "text")


def translate_tools(tools) -> list[dict]:
    translated = []
    for tool in tools or ():
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            continue
        function = tool.get("function")
        if not isinstance(function, dict):
            continue
        schema = function.get("parameters") or {"type": "object", "properties": {}}
        entry = {"name": function.get("name") or "", "input_schema": schema}
        if function.get("description"):
            entry["description"] = function["description"]
        translated.append(entry)
    return translated


def translate_tool_choice(choice, parallel: bool | None) -> dict | None:
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        translated = {"type": "any"}
    elif isinstance(choice, dict):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        translated = {"type": "tool", "name": name} if name else {"type": "auto"}
    elif choice == "auto" or parallel is False:
        translated = {"type": "auto"}
    else:
        return None
    if parallel is False:
        translated["disable_parallel_tool_use"] = True
    return translated


def _stop_sequences(stop) -> list[str]:
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list):
        return []
    # Anthropic refuses stop sequences made only of whitespace.
    return [s for s in stops if isinstance(s, str) and s.strip()]


def translate_request(payload: dict, *, stream: bool) -> dict:
    """Return the Messages API body for an OpenAI chat completions payload."""
    system, messages = translate_messages(payload.get("messages") or [])
    body: dict = {"model": payload.get("model"), "messages": messages}
    if system:
        body["system"] = _system(system)
    limit = payload.get("max_completion_tokens") or payload.get("max_tokens")
    if not isinstance(limit, int) or isinstance(limit, bool):
        limit = DEFAULT_MAX_TOKENS
    body["max_tokens"] = limit
    for name in _SAME_NAME:
        if payload.get(name) is not None:
            body[name] = payload[name]
    # OpenAI's temperature goes up to 2, Anthropic's to 1.
    if isinstance(body.get("temperature"), int | float) and body["temperature"] > 1:
        body["temperature"] = 1.0
    stops = _stop_sequences(payload.get("stop"))
    if stops:
        body["stop_sequences"] = stops
    tools = translate_tools(payload.get("tools"))
    if tools:
        body["tools"] = tools
        choice = translate_tool_choice(
            payload.get("tool_choice"), payload.get("parallel_tool_calls")
        )
        if choice is not None:
            body["tool_choice"] = choice
    if isinstance(payload.get("user"), str) and payload["user"]:
        body["metadata"] = {"user_id": payload["user"]}
    _thinking(body, payload.get("reasoning_effort"))
    if stream:
        body["stream"] = True
    return body


def _thinking(body: dict, effort) -> None:
    """
    Turn OpenAI's reasoning_effort into extended thinking with a budget that
    fits under max_tokens (the hold was sized by it); a budget too small to
    be accepted means no thinking. Thinking takes no temperature, top_k or
    narrowed top_p, so those are left out with it.
    """
    budget = THINKING_BUDGETS.get(effort) if isinstance(effort, str) else None
    if budget is None:
        return
    budget = min(budget, body["max_tokens"] - 1)
    if budget < MIN_THINKING_BUDGET:
        return
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    for name in ("temperature", "top_k", "top_p"):
        body.pop(name, None)


# -- response ------------------------------------------------------------


def translate_response(
    message: dict, model: str | None = None
) -> tuple[dict, TokenUsage | None]:
    """Return the `chat.completion` object for an Anthropic message, naming
    `model` (the upstream's name when None)."""
    texts, tool_calls = [], []
    for block in message.get("content") or ():
        if block.get("type") == "text":
            texts.append(block.get("text") or "")
        elif block.get("type") == "tool_use":
            tool_calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
    reply: dict = {
        "role": "assistant",
        "content": "".join(texts) if texts or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        reply["tool_calls"] = tool_calls
    raw_usage = message.get("usage")
    usage = usage_from_anthropic(raw_usage) if isinstance(raw_usage, dict) else None
    body = {
        "id": f"chatcmpl-{message.get('id') or ''}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model or message.get("model"),
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": finish_reason(message.get("stop_reason")),
            }
        ],
    }
    if usage is not None:
        body["usage"] = openai_usage(usage)
    return body, usage


# -- stream --------------------------------------------------------------


def _counts(usage) -> dict:
    """
    Return a message_delta's usage counts: cumulative, they replace
    message_start's, but a bucket it leaves null keeps what that said.
    """
    if not isinstance(usage, dict):
        return {}
    return {name: count for name, count in usage.items() if count is not None}


class MessagesPassthrough(HeldBack):
    """
    Follow a Messages API event stream on its way to an Anthropic-format
    client: events pass unchanged, usage and text are kept, and the final
    message_delta and message_stop are held back for the relay to send once
    it has settled, the delta's usage with the cost and the balance after it.
    """

    broken = BROKEN_EVENT

    def __init__(self, model: str | None = None):
        # The public model name, when answers must be renamed to it.
        self.model = model
        self.usage: TokenUsage | None = None
        self.prompt_usage: TokenUsage | None = None
        self.done = False
        self.error = ""
        self.response_id = ""
        self.text: list[str] = []
        self.closing = b""
        self._usage: dict = {}
        # The last message_delta, held back until the stream ends.
        self._delta: dict | None = None
        self._buffer = SSEBuffer()

    def feed(self, data: bytes) -> bytes:
        out = []
        for event in self._buffer.feed(data):
            if self.done:
                break
            try:
                message = orjson.loads(event_data(event))
            except orjson.JSONDecodeError:
                out.append(event)
                continue
            kind = message.get("type") if isinstance(message, dict) else None
            if kind == "message_stop":
                self.done, self.closing = True, event
                continue
            if self._delta is not None and kind not in (None, "ping"):
                # Something followed the delta held: it was not the last.
                out.append(sse(self._delta, "message_delta"))
                self._delta = None
            if kind == "message_start":
                started = message.get("message") or {}
                self._usage.update(started.get("usage") or {})
                self.prompt_usage = usage_from_anthropic(self._usage)
                if self.model is not None:
                    renamed = {**message, "message": {**started, "model": self.model}}
                    event = sse(renamed, "message_start")
            elif kind == "error":
                self.error = error_message(message.get("error"))
            elif kind == "message_delta":
                self._usage.update(_counts(message.get("usage")))
                self.usage = usage_from_anthropic(self._usage)
                self._delta = message
                continue
            elif kind == "content_block_delta":
                delta = message.get("delta") or {}
                piece = (
                    delta.get("text")
                    or delta.get("partial_json")
                    or delta.get("thinking")
                )
                if piece:
                    self.text.append(piece)
            out.append(event)
            if self.error:
                break
        return b"".join(out)

    def end(self) -> bytes:
        # Complete only once message_stop came.
        return b""

    def close(self, usage: TokenUsage, bill: Bill | None = None) -> bytes:
        if self._delta is None:
            return self.closing
        delta = self._delta
        delta = {**delta, "usage": with_bill(delta.get("usage"), bill, stream=True)}
        return sse(delta, "message_delta") + self.closing


class AnthropicStream(OpenAIOutput):
    """
    Turn a Messages API event stream into `chat.completion.chunk` events.

    Text blocks become content deltas; each tool_use block becomes one
    OpenAI tool call, numbered in order of appearance, whose arguments
    arrive as the `input_json_delta` fragments do. Thinking is not shown
    but is kept in `text`: it is billed as output.
    """

    def __init__(self, *, forward_usage: bool, model: str | None = None):
        super().__init__(forward_usage=forward_usage, model=model)
        self._base: dict = {
            "id": "chatcmpl-",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": None,
        }
        # The final usage chunk is made of it (OpenAIOutput.close).
        self.base = self._base
        self._usage: dict = {}
        # Anthropic content block index -> OpenAI tool call index.
        self._tool_index: dict[int, int] = {}

    def feed(self, data: bytes) -> bytes:
        out = []
        for event in self._buffer.feed(data):
            if self.done or self.error:
                break
            try:
                parsed = orjson.loads(event_data(event))
            except orjson.JSONDecodeError:
                continue
            if isinstance(parsed, dict):
                out.extend(self._translate(parsed))
        return b"".join(out)

    def _chunk(self, delta: dict, finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse({**self._base, "choices": [choice]})

    def _translate(self, event: dict) -> list[bytes]:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self._base["id"] = f"chatcmpl-{message.get('id') or ''}"
            self._base["model"] = self.model or message.get("model")
            self._usage.update(message.get("usage") or {})
            self.prompt_usage = usage_from_anthropic(self._usage)
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(event.get("index"), event.get("content_block"))
        if kind == "content_block_delta":
            return self._block_delta(event.get("index"), event.get("delta") or {})
        if kind == "message_delta":
            self._usage.update(_counts(event.get("usage")))
            self.usage = usage_from_anthropic(self._usage)
            stop = (event.get("delta") or {}).get("stop_reason")
            return [self._chunk({}, finish_reason(stop) or "stop")]
        if kind == "message_stop":
            self.done = True
            if self.usage is None and self._usage:
                self.usage = usage_from_anthropic(self._usage)
            # The usage chunk follows once settled, with the cost.
            return []
        if kind == "error":
            error = event.get("error") or {}
            self.error = error_message(error)
            return [
                sse(
                    {
                        "error": {
                            "message": str(error.get("message") or "Upstream error."),
                            "type": str(error.get("type") or "server_error"),
                            "param": None,
                            "code": None,
                        }
                    }
                )
            ]
        # ping, content_block_stop and event types added after this was
        # written carry nothing a chat completion chunk can say.
        return []

    def _block_start(self, index, block) -> list[bytes]:
        if not isinstance(block, dict):
            return []
        if block.get("type") == "text" and block.get("text"):
            self.text.append(block["text"])
            return [self._chunk({"content": block["text"]})]
        if block.get("type") != "tool_use":
            return []
        call = self._tool_index[index] = len(self._tool_index)
        function = {"name": block.get("name"), "arguments": ""}
        tool_call = {"index": call, "id": block.get("id"), "type": "function"}
        return [self._chunk({"tool_calls": [{**tool_call, "function": function}]})]

    def _block_delta(self, index, delta: dict) -> list[bytes]:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            self.text.append(delta["text"])
            return [self._chunk({"content": delta["text"]})]
        if kind == "input_json_delta" and delta.get("partial_json"):
            fragment = delta["partial_json"]
            self.text.append(fragment)
            call = self._tool_index.get(index)
            if call is None:
                return []
            tool_call = {"index": call, "function": {"arguments": fragment}}
            return [self._chunk({"tool_calls": [tool_call]})]
        if kind == "thinking_delta" and delta.get("thinking"):
            self.text.append(delta["thinking"])
        return []


class AnthropicAdapter(ChatAdapter):
    endpoints = frozenset({"chat.completions", "messages"})

    def request(
        self,
        endpoint: Endpoint,
        channel: ChannelInfo,
        payload: dict,
        *,
        stream: bool,
        headers: dict | None = None,
    ) -> httpx.Request:
        if endpoint.name != "messages":
            return self.chat_request(channel, payload, stream=stream)
        # Already in Anthropic's format: passed through, with the client's
        # anthropic-version and anthropic-beta headers.
        return self._messages_request(channel, payload, stream, headers or {})

    def response(
        self, endpoint: Endpoint, raw: bytes, model: ModelNames | None = None
    ) -> tuple[bytes, TokenUsage | None]:
        if endpoint.name != "messages":
            return self.chat_response(raw, model and model.public)
        body = orjson.loads(raw)
        if model is not None and model.renamed:
            raw = orjson.dumps({**body, "model": model.public})
        usage = body.get("usage")
        return raw, usage_from_anthropic(usage) if usage else None

    def count_tokens_request(
        self, channel: ChannelInfo, payload: dict, headers: dict
    ) -> httpx.Request:
        """Build a pass-through request to count a Messages payload's tokens."""
        return self._messages_request(
            channel, payload, False, headers, "/v1/messages/count_tokens"
        )

    def stream(
        self,
        endpoint: Endpoint,
        *,
        forward_usage: bool,
        model: ModelNames | None = None,
    ):
        if endpoint.name != "messages":
            return self.chat_stream(
                forward_usage=forward_usage, model=model and model.public
            )
        return MessagesPassthrough(model.public if model and model.renamed else None)

    def chat_request(
        self, channel: ChannelInfo, payload: dict, *, stream: bool
    ) -> httpx.Request:
        return self._messages_request(
            channel, translate_request(payload, stream=stream), stream, {}
        )

    def _messages_request(
        self,
        channel: ChannelInfo,
        body: dict,
        stream: bool,
        extra: dict,
        path: str = "/v1/messages",
    ) -> httpx.Request:
        headers = {
            "content-type": "application/json",
            "accept-encoding": "identity",
            "anthropic-version": ANTHROPIC_VERSION,
            **extra,
        }
        if channel.api_key:
            headers["x-api-key"] = channel.api_key
        if stream:
            headers["accept"] = "text/event-stream"
        return httpx.Request(
            "POST",
            upstream.url(f"{self.base_url(channel)}{path}"),
            headers=headers,
            content=orjson.dumps(body),
        )

    def base_url(self, channel: ChannelInfo) -> str:
        # Staff often paste the SDK-style base URL that ends in /v1.
        url = channel.base_url.rstrip("/")
        return url.removesuffix("/v1")

    def chat_response(
        self, raw: bytes, model: str | None = None
    ) -> tuple[bytes, TokenUsage | None]:
        body, usage = translate_response(orjson.loads(raw), model)
        return orjson.dumps(body), usage

    def chat_stream(
        self, *, forward_usage: bool, model: str | None = None
    ) -> AnthropicStream:
        return AnthropicStream(forward_usage=forward_usage, model=model)

    def transport(self) -> httpx.AsyncBaseTransport:
        return upstream.transport()
