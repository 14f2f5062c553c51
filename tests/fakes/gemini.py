"""Fake Google Gemini API (generateContent) served over real HTTP.

Speaks the wire format the relay's Gemini adapter targets::

    POST /v1beta/models/{model}:generateContent
    POST /v1beta/models/{model}:streamGenerateContent?alt=sse   (SSE events)
    POST /v1beta/models/{model}:streamGenerateContent           (JSON array)

It refuses what the real API refuses, in Google's error shape
``{"error": {"code", "message", "status"}}``: no API key (403
PERMISSION_DENIED), a wrong one (400 INVALID_ARGUMENT, reason
API_KEY_INVALID), a body that is not JSON, empty ``contents``, a role other
than user/model, empty ``parts``, empty text, a part with no or two data
fields, and field names outside the API's (camelCase only, which is
stricter than Google, who also accepts snake_case).

Replies and usage are deterministic so tests can predict billed figures:

* the reply is ``reply`` split into words; streams send one word a chunk, the
  last chunk carrying ``finishReason`` (as Gemini does, with the last text);
  ``maxOutputTokens`` truncates to that many words and finishes MAX_TOKENS.
* ``promptTokenCount`` = for every turn 1 + per part: the words of a text
  part, 258 for inlineData/fileData (Gemini's count for an image), 8 for a
  functionCall/functionResponse; plus the words of ``systemInstruction``.
* ``candidatesTokenCount`` = words sent (per candidate, times
  ``candidateCount``); 5 for a function-call reply.
* ``thoughtsTokenCount`` = ``thoughts_tokens`` and ``cachedContentTokenCount``
  = ``min(cached_tokens, prompt)``, both left out when zero, as Google does.
* ``totalTokenCount`` = prompt + candidates + thoughts. Every stream chunk
  carries usageMetadata with the counts so far; the last is authoritative.

Knobs (:class:`Knobs`): ``function_call`` answers with a ``functionCall`` of
the first declared function until the last turn carries a
``functionResponse``, then with text, so a round trip completes;
``error_after`` streams Google's error object (503 UNAVAILABLE) after N
chunks and ends the body (as an SSE event, or as the JSON array's last
element); ``drop_after`` closes the connection after N chunks (a
generateContent request is dropped at once). Both leave generateContent's
plain answers alone otherwise. ``chunk_delay`` pauses that many seconds
before each streamed chunk, and ``split_utf8`` sends every streamed chunk
holding a multi-byte UTF-8 character in two writes, cut inside that
character, a moment apart. A stream the client leaves before its last chunk
is counted in :attr:`FakeGemini.aborted_streams`, and the chunks it had sent
by then in :attr:`FakeGemini.aborted_after`.
"""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

import orjson

from tests.fakes.asgi import StreamRecorder, wait_disconnect, write_event
from tests.fakes.upstream import drop_connection
from tests.servers import LoopbackFake, ThreadedServer

DEFAULT_REPLY = "Hello from the fake Gemini."
STREAM_ERROR = "The model is overloaded. Please try again later."
MODEL_VERSION = "gemini-fake-001"
FUNCTION_ARGS = {"query": "fake"}
THOUGHT_SIGNATURE = "ZmFrZS1zaWduYXR1cmU="
IMAGE_TOKENS = 258
FUNCTION_PART_TOKENS = 8
FUNCTION_REPLY_TOKENS = 5
# A pause between the two halves of a split character, so that they reach the
# reader as separate reads rather than one coalesced segment.

_PATH = re.compile(r"^/v1beta/models/([^/:]+):(generateContent|streamGenerateContent)$")
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_DATA_FIELDS = frozenset(
    [
        "text",
        "inlineData",
        "fileData",
        "functionCall",
        "functionResponse",
        "executableCode",
        "codeExecutionResult",
    ]
)
_PART_FIELDS = _DATA_FIELDS | {"thought", "thoughtSignature", "videoMetadata"}
_BODY_FIELDS = frozenset(
    [
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "generationConfig",
        "safetySettings",
        "cachedContent",
    ]
)
_CONFIG_FIELDS = frozenset(
    [
        "temperature",
        "topP",
        "topK",
        "maxOutputTokens",
        "stopSequences",
        "candidateCount",
        "presencePenalty",
        "frequencyPenalty",
        "seed",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "thinkingConfig",
    ]
)


def google_error(status: int, message: str, **detail: str) -> dict[str, Any]:
    """Build a Google-shaped error body."""
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if detail:
        info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", **detail}
        error["details"] = [info]
    return {"error": error}


def _words(text: Any) -> int:
    return len(text.split()) if isinstance(text, str) else 0


def prompt_tokens(body: dict[str, Any]) -> int:
    """Return the promptTokenCount the fake reports for a request body."""
    total = sum(
        _words(part.get("text"))
        for part in (body.get("systemInstruction") or {}).get("parts") or ()
    )
    for content in body["contents"]:
        total += 1
        for part in content["parts"]:
            if "text" in part:
                total += _words(part["text"])
            elif "inlineData" in part or "fileData" in part:
                total += IMAGE_TOKENS
            else:
                total += FUNCTION_PART_TOKENS
    return total


def _invalid(body: Any) -> str | None:
    """Return the message the real API would refuse `body` with, if any."""
    if not isinstance(body, dict):
        return "Invalid JSON payload received."
    unknown = set(body) - _BODY_FIELDS
    config = body.get("generationConfig")
    unknown |= set(config if isinstance(config, dict) else ()) - _CONFIG_FIELDS
    if unknown:
        return f"Invalid JSON payload received. Unknown name {sorted(unknown)[0]!r}."
    contents, roles = body.get("contents"), ("user", "model")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for i, content in enumerate(contents):
        if not isinstance(content, dict) or content.get("role") not in roles:
            return "Please use a valid role: user, model."
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return f"* GenerateContentRequest.contents[{i}].parts: must not be empty"
        for part in parts:
            # A part is a oneof: exactly one data field, plus known extras.
            fields = set(part) if isinstance(part, dict) else {None}
            if fields - _PART_FIELDS or len(fields & _DATA_FIELDS) != 1:
                return f"* GenerateContentRequest.contents[{i}].parts: bad part"
            if part.get("text") == "":
                return "Unable to submit request because it has an empty text."
    config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    if config.get("allowedFunctionNames") and config.get("mode") != "ANY":
        return "allowed_function_names may only be set when the mode is ANY."
    return None


@dataclass(frozen=True)
class Knobs:
    """How the fake behaves; replace them with ``FakeGemini.configure``."""

    reply: str = DEFAULT_REPLY
    cached_tokens: int = 0
    thoughts_tokens: int = 0
    function_call: bool = False
    status: int | None = None
    latency: float = 0.0
    api_key: str | None = None
    error_after: int | None = None  # stream an error object after N chunks
    drop_after: int | None = None  # close the connection after N chunks
    chunk_delay: float = 0.0  # seconds before each streamed chunk
    split_utf8: bool = False  # cut multi-byte characters across two writes


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw_body: bytes

    @property
    def model(self) -> str | None:
        found = _PATH.match(self.path)
        return found.group(1) if found else None


class FakeGemini(StreamRecorder[RecordedRequest], LoopbackFake):
    """A fake Gemini API: an ASGI app plus a uvicorn server thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **knobs: Any):
        self.host, self.port = host, port
        self.knobs = Knobs(**knobs)
        self._start_recording()
        self._server: ThreadedServer | None = None

    def configure(self, **knobs: Any) -> Knobs:
        """Replace the knobs: unnamed ones go back to their defaults."""
        self.knobs = Knobs(**knobs)
        return self.knobs

    def reset(self) -> None:
        self.configure()
        self._forget_recorded()

    def url(self) -> str:
        """Return the API base a channel points at (ending in /v1beta)."""
        return f"http://{self.host}:{self.port}/v1beta"

    # -- ASGI app ----------------------------------------------------------

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        query = dict(urllib.parse.parse_qsl(scope.get("query_string", b"").decode()))
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        request = RecordedRequest(
            scope["method"], scope["path"], query, headers, body, raw
        )
        self._record(request)
        knobs = self.knobs
        if knobs.latency:
            await asyncio.sleep(knobs.latency)
        error = self._refusal(request, knobs)
        if error is not None:
            await _send(send, error["error"]["code"], error)
            return
        action = _PATH.match(request.path).group(2)
        chunks = self._chunks(body, knobs)
        if action == "generateContent":
            if knobs.drop_after is not None:
                drop_connection(send)
                return
            await _send(send, 200, chunks[-1] | {"candidates": _merged(chunks)})
            return
        pieces: list[Any] = list(chunks)
        if knobs.error_after is not None:
            pieces = [*chunks[: knobs.error_after], google_error(503, STREAM_ERROR)]
        if query.get("alt") == "sse":
            # Google frames its events with CRLF.
            events = [b"data: " + orjson.dumps(c) + b"\r\n\r\n" for c in pieces]
            end, content_type = b"", "text/event-stream"
        else:
            # A JSON array whose elements arrive one by one.
            first, *rest = (orjson.dumps(c) for c in pieces)
            events = [b"[" + first, *(b",\r\n" + element for element in rest)]
            end, content_type = b"]", "application/json; charset=UTF-8"
        await self._stream(receive, send, events, end, knobs, content_type)

    async def _stream(
        self,
        receive,
        send,
        events: list[bytes],
        end: bytes,
        knobs: Knobs,
        content_type: str,
    ) -> None:
        """Send one event per chunk, then ``end``; or drop after ``drop_after``."""
        headers = [(b"content-type", content_type.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        # uvicorn silently discards writes once the client has gone, so only
        # a concurrent receive() notices it leave.
        watcher = asyncio.create_task(wait_disconnect(receive))
        try:
            for sent, event in enumerate(events[: knobs.drop_after]):
                if knobs.chunk_delay:
                    await asyncio.wait((watcher,), timeout=knobs.chunk_delay)
                if watcher.done():
                    self._record_abandoned(sent)
                    return
                await write_event(send, event, knobs.split_utf8)
            if knobs.drop_after is not None:
                drop_connection(send)
                return
            await send({"type": "http.response.body", "body": end})
        finally:
            watcher.cancel()

    def _refusal(self, request: RecordedRequest, knobs: Knobs) -> dict | None:
        if request.method != "POST" or not _PATH.match(request.path):
            return google_error(404, f"Method not found: {request.path}")
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            return google_error(
                403,
                "Method doesn't allow unregistered callers (callers without "
                "established identity). Please use API Key or other form of "
                "API consumer identity to call this API.",
            )
        if knobs.api_key is not None and key != knobs.api_key:
            return google_error(
                400,
                "API key not valid. Please pass a valid API key.",
                reason="API_KEY_INVALID",
                domain="googleapis.com",
            )
        invalid = _invalid(request.body)
        if invalid:
            return google_error(400, invalid)
        if knobs.status is not None:
            return google_error(knobs.status, f"Fake Gemini error ({knobs.status}).")
        return None

    def _chunks(self, body: dict[str, Any], knobs: Knobs) -> list[dict[str, Any]]:
        """Return the stream's chunks; the answer is their merge."""
        config = body.get("generationConfig") or {}
        count = config.get("candidateCount") or 1
        prompt = prompt_tokens(body)
        declarations = [
            d
            for tool in body.get("tools") or ()
            for d in tool.get("functionDeclarations") or ()
        ]
        if knobs.function_call and declarations and not _function_answered(body):
            call = {"name": declarations[0]["name"], "args": FUNCTION_ARGS}
            part = {"functionCall": call, "thoughtSignature": THOUGHT_SIGNATURE}
            pieces, finish, per_word = [[part]], "STOP", FUNCTION_REPLY_TOKENS
        else:
            words = re.findall(r"\S+\s*", knobs.reply)
            limit = config.get("maxOutputTokens")
            finish = "STOP"
            if limit is not None and limit < len(words):
                words, finish = words[:limit], "MAX_TOKENS"
            pieces, per_word = [[{"text": word}] for word in words] or [[]], 1
        chunks = []
        for number, parts in enumerate(pieces, start=1):
            last = number == len(pieces)
            candidates = []
            for index in range(count):
                candidate: dict[str, Any] = {
                    "content": {"parts": parts, "role": "model"},
                    "index": index,
                }
                if last:
                    candidate["finishReason"] = finish
                candidates.append(candidate)
            sent = number * per_word * count
            usage = {"promptTokenCount": prompt, "candidatesTokenCount": sent}
            if knobs.cached_tokens:
                usage["cachedContentTokenCount"] = min(knobs.cached_tokens, prompt)
            if knobs.thoughts_tokens:
                usage["thoughtsTokenCount"] = knobs.thoughts_tokens
            usage["totalTokenCount"] = prompt + sent + knobs.thoughts_tokens
            chunks.append(
                {
                    "candidates": candidates,
                    "usageMetadata": usage,
                    "modelVersion": MODEL_VERSION,
                    "responseId": "fakeResponse1",
                }
            )
        return chunks


def _function_answered(body: dict[str, Any]) -> bool:
    """Return whether the last turn hands back a function's result."""
    return any("functionResponse" in part for part in body["contents"][-1]["parts"])


def _merged(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Join streamed candidates into whole ones, as generateContent answers."""
    merged = [dict(candidate) for candidate in chunks[-1]["candidates"]]
    for candidate in merged:
        index = candidate["index"]
        parts = [
            part
            for chunk in chunks
            for part in chunk["candidates"][index]["content"]["parts"]
        ]
        text = "".join(part["text"] for part in parts if "text" in part)
        calls = [part for part in parts if "text" not in part]
        joined = ([{"text": text}] if text else []) + calls
        candidate["content"] = {"parts": joined, "role": "model"}
    return merged


async def _send(send, status: int, payload: Any) -> None:
    body = orjson.dumps(payload)
    headers = [
        (b"content-type", b"application/json; charset=UTF-8"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
