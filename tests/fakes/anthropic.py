"""Fake Anthropic Messages API served over real HTTP.

Speaks ``POST /v1/messages`` the way api.anthropic.com does: ``message``
objects, the streamed event sequence (``message_start``, ``content_block_*``,
``ping``, ``message_delta``, ``message_stop``, ``error``) and errors shaped
``{"type": "error", "error": {"type", "message"}}``; and ``POST
/v1/messages/count_tokens``, answering ``{"input_tokens": N}`` with the count
below (all input, cached or not). It refuses what the real API refuses
(missing ``x-api-key``, ``anthropic-version`` or ``max_tokens``, top-level
fields the API does not document, turns that do not alternate, orphan tool
results), so a translation bug shows up as a 400, as it would in production.
Every field the current Messages API documents (beta ones included, such as
``context_management`` and ``output_config`` that Claude Code sends) is
accepted without its beta header.

Knobs (:class:`Knobs`): ``tool_use`` answers with a ``tool_use`` block for
the first tool (or the one ``tool_choice``, else ``tool_name``, names; its
input is ``tool_input``, else :data:`TOOL_INPUT`) until the last user turn
carries a ``tool_result``, then with text, so a round trip completes;
``error_after`` streams ``event: error`` (``overloaded_error``) after N
content deltas and ends the body; ``drop_after`` closes the connection
after N deltas (a request that does not stream is dropped at once). Both
come after ``message_start``, whose usage already holds the input buckets.
``chunk_delay`` pauses that many seconds before each content delta of a
stream, and ``split_utf8`` sends every streamed event holding a multi-byte
UTF-8 character in two writes, cut inside that character, a moment apart.
A stream the client leaves before its last event is counted in
:attr:`FakeAnthropic.aborted_streams`, and the deltas it had sent by then
in :attr:`FakeAnthropic.aborted_after`.

Usage is deterministic so tests can predict billed figures:

* all input = 3 + words of ``system`` + for each message 3 + words of its text
  (strings, text blocks, text inside tool results) + 10 per tool definition;
* ``cache_read_input_tokens`` = the ``cache_read`` knob, and
  ``cache_creation_input_tokens`` = the ``cache_creation`` knob, each capped
  by the input left; ``input_tokens`` = all input minus both (as in the real
  API, only the uncached remainder);
* with the ``cache_creation_1h`` knob set, the usage also tells the cache
  writes apart by lifetime as the current API does: ``cache_creation`` =
  ``{ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}``, the 1-hour
  part being the knob capped by the writes (left out when the knob is None,
  as older answers do); ``full_delta_usage`` repeats the input buckets in
  the stream's ``message_delta`` usage, as the current API does;
* ``output_tokens`` = reply words after ``stop_sequences`` / ``max_tokens``
  truncation, + 10 when a ``tool_use`` block is returned.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, replace
from typing import Any

import orjson

from tests.fakes.asgi import StreamRecorder, read_body, wait_disconnect, write_event
from tests.fakes.upstream import drop_connection, split_reply
from tests.servers import LoopbackFake, ThreadedServer

DEFAULT_REPLY = "Hello! This is the fake Anthropic."
TOOL_INPUT = {"location": "Paris", "unit": "celsius"}
TOOL_TOKENS = 10
MESSAGES_PATH = "/v1/messages"
FIELDS = frozenset(
    [
        "model",
        "messages",
        "max_tokens",
        "system",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "container",
        "mcp_servers",
        "cache_control",
        "context_management",
        "output_config",
        "output_format",
        "inference_geo",
        "speed",
        "diagnostics",
        "compaction",
        "fallbacks",
        "fallback_credit_token",
        "billing_policy",
        "thread",
        "user_profile_id",
        "workspace_id",
    ]
)
# A pause between the two halves of a split character, so that they reach the
# reader as separate reads rather than one coalesced segment.
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
# What count_tokens takes: the prompt's fields, nothing about generation.
COUNT_FIELDS = frozenset(
    [
        "model",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "cache_control",
        "context_management",
        "output_config",
        "output_format",
        "mcp_servers",
        "speed",
        "compaction",
        "billing_policy",
        "user_profile_id",
        "workspace_id",
    ]
)
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_ids = itertools.count(1)


def anthropic_error(status: int, message: str) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def _words(content: Any) -> int:
    if isinstance(content, str):
        return len(content.split())
    if not isinstance(content, list):
        return 0
    total = 0
    for block in content:
        if isinstance(block, dict) and block.get("type") == "text":
            total += len(str(block.get("text", "")).split())
        elif isinstance(block, dict) and block.get("type") == "tool_result":
            total += _words(block.get("content"))
    return total


def input_tokens(body: dict[str, Any]) -> int:
    """Return all input tokens (cached or not) the fake counts for ``body``."""
    messages = body.get("messages") or []
    return (
        3
        + _words(body.get("system"))
        + sum(3 + _words(m.get("content")) for m in messages)
        + TOOL_TOKENS * len(body.get("tools") or [])
    )


@dataclass(frozen=True)
class Knobs:
    """How the fake answers; replace them with ``FakeAnthropic.configure``."""

    reply: str = DEFAULT_REPLY
    tool_use: bool = False  # answer with a tool_use block for the first tool
    tool_name: str | None = None  # ...or for this declared tool
    tool_input: dict[str, Any] | None = None  # ...with this input (TOOL_INPUT)
    cache_read: int = 0
    cache_creation: int = 0
    # The part of cache_creation written for an hour; None: no breakdown.
    cache_creation_1h: int | None = None
    full_delta_usage: bool = False  # message_delta repeats the input buckets
    status: int | None = None  # answer every request with this error
    latency: float = 0.0
    error_after: int | None = None  # stream an `error` event after N deltas
    drop_after: int | None = None  # close the connection after N deltas
    require_key: str | None = None
    chunk_delay: float = 0.0  # seconds before each streamed content delta
    split_utf8: bool = False  # cut multi-byte characters across two writes


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw_body: bytes

    @property
    def api_key(self) -> str | None:
        return self.headers.get("x-api-key")


def _invalid(
    headers: dict[str, str], body: Any, knobs: Knobs, *, counting: bool = False
) -> tuple | None:
    """Return (status, message) for what the real API would refuse.

    ``counting`` checks a count_tokens body, which has no generation fields.
    """
    if not headers.get("x-api-key"):
        return 401, "x-api-key header is required"
    if knobs.require_key is not None and headers["x-api-key"] != knobs.require_key:
        return 401, "invalid x-api-key"
    if not headers.get("anthropic-version"):
        return 400, "anthropic-version: header is required"
    if not isinstance(body, dict):
        return 400, "There was an error parsing the body of your request."
    fields = COUNT_FIELDS if counting else FIELDS
    for name in body:
        if name not in fields:
            return 400, f"{name}: Extra inputs are not permitted"
    required = (
        ("model", "messages") if counting else ("model", "max_tokens", "messages")
    )
    for name in required:
        if name not in body:
            return 400, f"{name}: Field required"
    limit = body.get("max_tokens", 1)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        return 400, "max_tokens: Input should be greater than or equal to 1"
    temperature = body.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        return 400, "temperature: Input should be less than or equal to 1"
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        return 400, "system: Input should be a valid string or list"
    for index, tool in enumerate(body.get("tools") or []):
        if not tool.get("name") or not isinstance(tool.get("input_schema"), dict):
            return 400, f"tools.{index}.input_schema: Field required"
    return _invalid_messages(body["messages"])


def _invalid_messages(messages: Any) -> tuple | None:
    if not isinstance(messages, list) or not messages:
        return 400, "messages: at least one message is required"
    expected, open_tool_uses = "user", set()
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            return 400, f"messages.{index}.role: Input should be 'user' or 'assistant'"
        if role != expected:
            return 400, (
                'messages: roles must alternate between "user" and "assistant", '
                f'starting with "user"; messages.{index} is "{role}"'
            )
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if not isinstance(content, list) or not content:
            return 400, f"messages.{index}: all messages must have non-empty content"
        answered = set()
        for block in content:
            if not isinstance(block, dict):
                return 400, f"messages.{index}.content: Input should be an object"
            kind = block.get("type")
            if kind == "text" and not block.get("text"):
                return 400, "messages: text content blocks must be non-empty"
            if kind == "tool_result":
                if block.get("tool_use_id") not in open_tool_uses:
                    return 400, (
                        f"messages.{index}: unexpected `tool_use_id` found in "
                        "`tool_result` blocks. Each `tool_result` block must "
                        "have a corresponding `tool_use` block in the previous "
                        "message."
                    )
                answered.add(block["tool_use_id"])
        if role == "user" and open_tool_uses - answered:
            return 400, (
                "messages: `tool_use` ids were found without `tool_result` "
                f"blocks immediately after: {sorted(open_tool_uses - answered)}"
            )
        open_tool_uses = {b.get("id") for b in content if b.get("type") == "tool_use"}
        expected = "assistant" if role == "user" else "user"
    return None


def _tool_answered(body: dict[str, Any]) -> bool:
    """Return whether the last user turn hands back a tool's result."""
    content = body["messages"][-1].get("content")
    return isinstance(content, list) and any(
        block.get("type") == "tool_result" for block in content
    )


def plan_reply(body: dict[str, Any], knobs: Knobs) -> dict[str, Any]:
    """Return the message the fake answers ``body`` with, usage included."""
    text, stop_reason, stop_sequence = knobs.reply, "end_turn", None
    for sequence in body.get("stop_sequences") or ():
        at = text.find(sequence)
        if at >= 0:
            text, stop_reason, stop_sequence = text[:at], "stop_sequence", sequence
    words = split_reply(text)
    tool = None
    if len(words) > body["max_tokens"]:
        words = words[: body["max_tokens"]]
        stop_reason, stop_sequence = "max_tokens", None
    elif knobs.tool_use and body.get("tools") and not _tool_answered(body):
        choice = body.get("tool_choice") or {}
        wanted = choice.get("name") or knobs.tool_name
        named = [t for t in body["tools"] if t["name"] == wanted]
        if choice.get("type") != "none":
            tool, stop_reason = (named or body["tools"])[0], "tool_use"
    content: list[dict[str, Any]] = []
    if words:
        content.append({"type": "text", "text": "".join(words)})
    if tool is not None:
        tool_id = f"toolu_fake{next(_ids):08d}"
        content.append(
            {
                "type": "tool_use",
                "id": tool_id,
                "name": tool["name"],
                "input": TOOL_INPUT if knobs.tool_input is None else knobs.tool_input,
            }
        )
    total = input_tokens(body)
    read = min(knobs.cache_read, total)
    written = min(knobs.cache_creation, total - read)
    usage: dict[str, Any] = {
        "input_tokens": total - read - written,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
        "output_tokens": len(words) + (TOOL_TOKENS if tool else 0),
    }
    if knobs.cache_creation_1h is not None:
        hour = min(knobs.cache_creation_1h, written)
        usage["cache_creation"] = {
            "ephemeral_5m_input_tokens": written - hour,
            "ephemeral_1h_input_tokens": hour,
        }
    return {
        "id": f"msg_fake{next(_ids):08d}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage,
    }


def _event(payload: dict[str, Any]) -> bytes:
    data = orjson.dumps(payload).decode()
    return f"event: {payload['type']}\ndata: {data}\n\n".encode()


def stream_events(message: dict[str, Any], knobs: Knobs) -> list[bytes]:
    """Return the SSE events that stream ``message``, cut by ``error_after``."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {**usage, "output_tokens": 1}
    events = [_event({"type": "message_start", "message": start})]
    events.append(_event({"type": "ping"}))
    deltas = 0
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            opened = {"type": "text", "text": ""}
            pieces = [
                {"type": "text_delta", "text": w} for w in split_reply(block["text"])
            ]
        else:
            opened = {**block, "input": {}}
            arguments = orjson.dumps(block["input"]).decode()
            cuts = [arguments[:1], arguments[1:12], arguments[12:]]
            pieces = [
                {"type": "input_json_delta", "partial_json": c} for c in ["", *cuts]
            ]
        events.append(
            _event(
                {"type": "content_block_start", "index": index, "content_block": opened}
            )
        )
        for delta in pieces:
            if deltas == knobs.error_after:
                error = anthropic_error(529, "Overloaded")
                return [*events, _event(error)]
            deltas += 1
            events.append(
                _event({"type": "content_block_delta", "index": index, "delta": delta})
            )
        events.append(_event({"type": "content_block_stop", "index": index}))
    events.append(
        _event(
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": message["stop_reason"],
                    "stop_sequence": message["stop_sequence"],
                },
                "usage": (
                    usage
                    if knobs.full_delta_usage
                    else {"output_tokens": usage["output_tokens"]}
                ),
            }
        )
    )
    events.append(_event({"type": "message_stop"}))
    return events


async def _send_json(send, status: int, payload: Any) -> None:
    body = orjson.dumps(payload)
    headers = [(b"content-type", b"application/json")]
    headers.append((b"request-id", f"req_fake{next(_ids):08d}".encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class FakeAnthropic(StreamRecorder[RecordedRequest], LoopbackFake):
    """The fake API: an ASGI app served by a uvicorn thread on loopback."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self.knobs = Knobs()
        self._start_recording()
        self._server: ThreadedServer | None = None

    def configure(self, **knobs: Any) -> Knobs:
        """Replace the knobs not named with their defaults (see Knobs)."""
        self.knobs = replace(Knobs(), **knobs)
        return self.knobs

    def reset(self) -> None:
        self.knobs = Knobs()
        self._forget_recorded()

    @property
    def base_url(self) -> str:
        """Return ``http://host:port``, the form Anthropic channels store."""
        if self._server is None:
            raise RuntimeError("FakeAnthropic is not started")
        return self._server.base_url

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        raw = await read_body(receive)
        if raw is None:
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        recorded = RecordedRequest(scope["method"], scope["path"], headers, body, raw)
        self._record(recorded)
        knobs = self.knobs
        route = (scope["method"], scope["path"])
        if route not in (("POST", MESSAGES_PATH), ("POST", COUNT_TOKENS_PATH)):
            await _send_json(send, 404, anthropic_error(404, "Not found"))
            return
        if knobs.latency:
            await asyncio.sleep(knobs.latency)
        counting = route[1] == COUNT_TOKENS_PATH
        refused = _invalid(headers, body, knobs, counting=counting)
        if refused is not None:
            await _send_json(send, refused[0], anthropic_error(*refused))
            return
        if knobs.status is not None:
            message = f"Fake Anthropic error ({knobs.status})."
            await _send_json(send, knobs.status, anthropic_error(knobs.status, message))
            return
        if counting:
            await _send_json(send, 200, {"input_tokens": input_tokens(body)})
            return
        message = plan_reply(body, knobs)
        if not body.get("stream"):
            if knobs.drop_after is not None:
                drop_connection(send)
                return
            await _send_json(send, 200, message)
            return
        await self._stream(receive, send, message, knobs)

    async def _stream(self, receive, send, message: dict[str, Any], knobs: Knobs):
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        # uvicorn silently discards writes once the client has gone, so only
        # a concurrent receive() notices it leave.
        watcher = asyncio.create_task(wait_disconnect(receive))
        try:
            deltas = 0
            for event in stream_events(message, knobs):
                is_delta = event.startswith(b"event: content_block_delta\n")
                # Past the content, the cut comes before the closing message_delta.
                if knobs.drop_after is not None and (
                    (is_delta and deltas == knobs.drop_after)
                    or event.startswith(b"event: message_delta\n")
                ):
                    drop_connection(send)
                    return
                if is_delta and knobs.chunk_delay:
                    await asyncio.wait((watcher,), timeout=knobs.chunk_delay)
                if watcher.done():
                    self._record_abandoned(deltas)
                    return
                deltas += is_delta
                await write_event(send, event, knobs.split_utf8)
            await send({"type": "http.response.body", "body": b""})
        finally:
            watcher.cancel()


if __name__ == "__main__":
    fake = FakeAnthropic(port=9200).start()
    print(f"Fake Anthropic on {fake.base_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
