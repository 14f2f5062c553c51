"""
Google's Gemini API (generateContent) behind the OpenAI chat-completions wire
format.

Requests are rebuilt field by field: Gemini has its own names for everything
(`contents`, `systemInstruction`, `generationConfig`...) and refuses names it
does not know, so OpenAI-only fields are dropped. Answers and streams are
rewritten into `chat.completion` objects and `chat.completion.chunk` events.

Gemini 3 models sign their function calls (`thoughtSignature`) and refuse a
history whose calls lost the signature. Like Google's own OpenAI-compatible
endpoint, the signature travels to the client in the tool call's
`extra_content.google.thought_signature` and comes back from there; a history
without one (written by another model, or by a client that drops unknown
fields) gets the sentinel Google documents for that case.
"""

import base64
import mimetypes
import time
import urllib.parse
import uuid

import httpx
import orjson

from billing.pricing import TokenUsage
from relay import upstream
from relay.catalog import ChannelInfo
from relay.formats.usage import openai_usage
from relay.providers.base import ChatAdapter
from relay.streaming import OpenAIOutput, event_data, sse

SKIP_SIGNATURE = "skip_thought_signature_validator"

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
}

# Google's canonical error statuses, as OpenAI error types.
ERROR_TYPES = {
    "UNAUTHENTICATED": "authentication_error",
    "PERMISSION_DENIED": "permission_error",
    "RESOURCE_EXHAUSTED": "rate_limit_error",
    "INTERNAL": "server_error",
    "UNAVAILABLE": "server_error",
    "DEADLINE_EXCEEDED": "server_error",
    "UNKNOWN": "server_error",
}

TOOL_MODES = {"none": "NONE", "auto": "AUTO", "required": "ANY"}

# OpenAI's reasoning_effort as thinking budgets, the figures Google's own
# OpenAI-compatible endpoint uses.
THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 8192, "high": 24576}

# Extensions mimetypes does not know everywhere (webp, heic) or at all.
_IMAGE_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "heic": "image/heic",
    "heif": "image/heif",
}


def finish_reason(reason: str | None) -> str | None:
    """Return OpenAI's finish_reason for Gemini's, None while unfinished."""
    if not reason or reason == "FINISH_REASON_UNSPECIFIED":
        return None
    # LANGUAGE, OTHER, MALFORMED_FUNCTION_CALL...: OpenAI has no closer word.
    return FINISH_REASONS.get(reason, "stop")


def usage_from_gemini(metadata: dict) -> TokenUsage:
    """Return Gemini's usage counted OpenAI's way; thinking is billed as output."""
    # Tool-use prompt tokens (built-in tools' results) are input the model
    # read; they stay zero unless such tools are ever enabled.
    prompt = int(metadata.get("promptTokenCount") or 0) + int(
        metadata.get("toolUsePromptTokenCount") or 0
    )
    return TokenUsage(
        prompt=prompt,
        cached=int(metadata.get("cachedContentTokenCount") or 0),
        completion=int(metadata.get("candidatesTokenCount") or 0)
        + int(metadata.get("thoughtsTokenCount") or 0),
        reasoning=int(metadata.get("thoughtsTokenCount") or 0),
    )


def gemini_openai_usage(metadata: dict) -> dict:
    """Return Gemini's usageMetadata as OpenAI's usage object."""
    return openai_usage(usage_from_gemini(metadata))


def openai_error(error) -> dict:
    """Return the OpenAI `error` object for a Gemini `error` object."""
    if not isinstance(error, dict):
        error = {"message": str(error)}
    status = error.get("status") if isinstance(error.get("status"), str) else None
    return {
        "message": str(error.get("message") or "The upstream provider failed."),
        "type": ERROR_TYPES.get(status or "", "invalid_request_error"),
        "param": None,
        "code": status.lower() if status else None,
    }


def _dig(value, *keys):
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


# -- request -------------------------------------------------------------


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _guess_type(url: str, default: str) -> str:
    path = urllib.parse.urlsplit(url).path
    name = path.rsplit("/", 1)[-1]
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return _IMAGE_TYPES.get(extension) or mimetypes.guess_type(path)[0] or default


def _media_part(url: str, default_type: str) -> dict | None:
    """Return the part for a data: URL (inline) or any other URL (by reference)."""
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        if not comma:
            return None
        mime_type = header.split(";")[0] or default_type
        if ";base64" not in header:
            raw = urllib.parse.unquote_to_bytes(data)
            data = base64.b64encode(raw).decode()
        return {"inlineData": {"mimeType": mime_type, "data": data}}
    if not url:
        return None
    return {"fileData": {"mimeType": _guess_type(url, default_type), "fileUri": url}}


def _content_parts(content) -> list[dict]:
    if isinstance(content, str):
        # Gemini refuses empty text parts.
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        return []
    parts = []
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        found = None
        if kind == "text" and part.get("text"):
            found = {"text": str(part["text"])}
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str):
                found = _media_part(url, "image/jpeg")
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            if isinstance(audio, dict) and audio.get("data"):
                mime_type = f"audio/{audio.get('format') or 'wav'}"
                found = {"inlineData": {"mimeType": mime_type, "data": audio["data"]}}
        elif kind == "file":
            data = _dig(part, "file", "file_data")
            if isinstance(data, str):
                found = _media_part(data, "application/pdf")
        if found:
            parts.append(found)
    return parts


def _arguments(raw) -> dict:
    """Return a tool call's arguments as the object Gemini requires."""
    if isinstance(raw, dict):
        return raw
    try:
        parsed = orjson.loads(raw or "{}")
    except (orjson.JSONDecodeError, TypeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _call_parts(tool_calls, names: dict) -> list[dict]:
    parts = []
    for call in tool_calls if isinstance(tool_calls, list) else ():
        function = _dig(call, "function")
        if not isinstance(function, dict) or not function.get("name"):
            continue
        names[call.get("id")] = function["name"]
        part = {
            "functionCall": {
                "name": function["name"],
                "args": _arguments(function.get("arguments")),
            }
        }
        signature = _dig(call, "extra_content", "google", "thought_signature")
        if isinstance(signature, str) and signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _response_part(name: str, content) -> dict:
    text = _text_of(content)
    try:
        result = orjson.loads(text)
    except orjson.JSONDecodeError:
        result = text
    # Gemini wants an object; anything else is wrapped the way its docs do.
    response = result if isinstance(result, dict) else {"result": result}
    return {"functionResponse": {"name": name, "response": response}}


def _sign_calls(parts: list[dict]) -> None:
    """Give a model turn's first call the sentinel when no call is signed."""
    calls = [part for part in parts if "functionCall" in part]
    if calls and not any("thoughtSignature" in part for part in calls):
        calls[0]["thoughtSignature"] = SKIP_SIGNATURE


def contents_from(messages) -> tuple[list[dict], dict | None]:
    """Return Gemini `contents` and `systemInstruction` for OpenAI messages."""
    system: list[dict] = []
    contents: list[dict] = []
    names: dict = {}  # tool_call id -> function name, for the tool's answer
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            # Gemini has one system instruction, not system turns: every
            # system message joins it, wherever it stood.
            text = _text_of(content)
            if text:
                system.append({"text": text})
            continue
        if role == "assistant":
            turn = "model"
            parts = _content_parts(content)
            parts += _call_parts(message.get("tool_calls"), names)
        elif role == "tool":
            turn = "user"
            call_id = message.get("tool_call_id")
            name = names.get(call_id) or message.get("name") or str(call_id)
            parts = [_response_part(name, content)]
        elif role == "function":
            turn = "user"
            parts = [_response_part(str(message.get("name")), content)]
        else:
            turn = "user"
            parts = _content_parts(content)
        if not parts:
            continue
        # Gemini expects turns to alternate; a tool's answers and the user's
        # next words are one user turn.
        if contents and contents[-1]["role"] == turn:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": turn, "parts": parts})
    for turn in contents:
        if turn["role"] == "model":
            _sign_calls(turn["parts"])
    return contents, {"parts": system} if system else None


def _tools(payload: dict) -> tuple[list[dict], dict | None]:
    declarations = []
    for tool in payload.get("tools") or ():
        function = _dig(tool, "function")
        if _dig(tool, "type") != "function" or not isinstance(function, dict):
            continue
        declaration = {"name": function.get("name")}
        if function.get("description"):
            declaration["description"] = function["description"]
        if isinstance(function.get("parameters"), dict) and function["parameters"]:
            # parametersJsonSchema takes JSON Schema as OpenAI clients write
            # it; `parameters` takes an OpenAPI subset and refuses fields
            # such as additionalProperties that strict tools always carry.
            declaration["parametersJsonSchema"] = function["parameters"]
        declarations.append(declaration)
    if not declarations:
        return [], None
    choice = payload.get("tool_choice")
    config = None
    if isinstance(choice, str) and choice in TOOL_MODES:
        config = {"mode": TOOL_MODES[choice]}
    elif _dig(choice, "type") == "function" and _dig(choice, "function", "name"):
        config = {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
    tool_config = {"functionCallingConfig": config} if config else None
    return [{"functionDeclarations": declarations}], tool_config


def _generation_config(payload: dict) -> dict:
    config = {}
    effort = payload.get("reasoning_effort")
    if isinstance(effort, str) and effort in THINKING_BUDGETS:
        config["thinkingConfig"] = {"thinkingBudget": THINKING_BUDGETS[effort]}
    limit = payload.get("max_completion_tokens")
    if limit is None:
        limit = payload.get("max_tokens")
    if limit is not None:
        config["maxOutputTokens"] = limit
    stop = payload.get("stop")
    if isinstance(stop, str):
        config["stopSequences"] = [stop]
    elif isinstance(stop, list) and stop:
        config["stopSequences"] = stop
    for ours, theirs in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("n", "candidateCount"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("seed", "seed"),
    ):
        if payload.get(ours) is not None:
            config[theirs] = payload[ours]
    response_format = payload.get("response_format")
    kind = _dig(response_format, "type")
    if kind in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = _dig(response_format, "json_schema", "schema")
        if kind == "json_schema" and isinstance(schema, dict):
            # JSON Schema as written, for the same reason as tool parameters.
            config["responseJsonSchema"] = schema
    return config


def request_body(payload: dict) -> dict:
    """Return the generateContent body for an OpenAI chat payload."""
    contents, system = contents_from(payload.get("messages"))
    body: dict = {"contents": contents}
    if system:
        body["systemInstruction"] = system
    tools, tool_config = _tools(payload)
    if tools:
        body["tools"] = tools
    if tool_config:
        body["toolConfig"] = tool_config
    config = _generation_config(payload)
    if config:
        body["generationConfig"] = config
    return body


# -- response ------------------------------------------------------------


def _call_id(call: dict) -> str:
    given = call.get("id")
    return given if isinstance(given, str) and given else f"call_{uuid.uuid4().hex}"


def _tool_call(part: dict, call_id: str) -> dict:
    call = part["functionCall"]
    tool_call = {
        "id": call_id,
        "type": "function",
        "function": {
            "name": call.get("name") or "",
            "arguments": orjson.dumps(call.get("args") or {}).decode(),
        },
    }
    if part.get("thoughtSignature"):
        tool_call["extra_content"] = {
            "google": {"thought_signature": part["thoughtSignature"]}
        }
    return tool_call


def _answer_parts(candidate: dict) -> list[dict]:
    parts = _dig(candidate, "content", "parts")
    if not isinstance(parts, list):
        return []
    # Thought summaries are the model's notes, not its answer.
    return [p for p in parts if isinstance(p, dict) and not p.get("thought")]


def _choice(candidate: dict, position: int) -> dict:
    texts, calls = [], []
    for part in _answer_parts(candidate):
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part.get("functionCall"), dict):
            calls.append(_tool_call(part, _call_id(part["functionCall"])))
    message = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    reason = finish_reason(candidate.get("finishReason")) or "stop"
    if calls and reason == "stop":
        reason = "tool_calls"
    return {
        "index": candidate.get("index", position),
        "message": message,
        "logprobs": None,
        "finish_reason": reason,
    }


def _blocked_choice() -> dict:
    """The answer to a prompt Gemini refused to read (no candidates at all)."""
    return {
        "index": 0,
        "message": {"role": "assistant", "content": "", "refusal": None},
        "logprobs": None,
        "finish_reason": "content_filter",
    }


def completion_from(body: dict, model: str | None = None) -> dict:
    """Return the `chat.completion` object for a generateContent answer,
    naming `model` (Gemini's modelVersion when None)."""
    candidates = [c for c in body.get("candidates") or () if isinstance(c, dict)]
    choices = [_choice(candidate, i) for i, candidate in enumerate(candidates)]
    if not choices:
        choices = [_blocked_choice()]
    completion = {
        "id": f"chatcmpl-{body.get('responseId') or uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model or body.get("modelVersion") or "",
        "choices": choices,
    }
    if isinstance(body.get("usageMetadata"), dict):
        completion["usage"] = gemini_openai_usage(body["usageMetadata"])
    return completion


# -- stream --------------------------------------------------------------


class GeminiStream(OpenAIOutput):
    """
    Rewrite a streamGenerateContent?alt=sse body as OpenAI chunk events.

    Gemini sends no end-of-stream event: its last chunk carries finishReason
    and the final usageMetadata together. The stream counts as `done` once
    every choice has finished and a usageMetadata has arrived in that chunk
    or a later one, so the relay, which stops reading at `done`, never cuts
    off the usage it bills by. A stream that finishes without usage after the
    finish is completed by `end()` when the body ends.
    """

    def __init__(self, *, forward_usage: bool, model: str | None = None):
        super().__init__(forward_usage=forward_usage, model=model)
        self._id = ""
        self._created = int(time.time())
        self._model = ""
        self._open: set[int] = set()
        self._calls: dict[int, int] = {}
        self._finished = False

    def feed(self, data: bytes) -> bytes:
        out = []
        for event in self._buffer.feed(data):
            if self.done or self.error:
                break
            payload = event_data(event)
            if payload:
                out.append(self._translate(payload))
        return b"".join(out)

    def end(self) -> bytes:
        """Settle a body that ended after finishing but without final usage."""
        if self._finished and not self._open:
            self.done = True  # the usage chunk follows once settled
        return b""

    def _translate(self, payload: bytes) -> bytes:
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return b""
        if not isinstance(chunk, dict):
            return b""
        if "error" in chunk:
            error = openai_error(chunk["error"])
            self.error = error["message"]
            return sse({"error": error})
        if not self._id:
            self._id = f"chatcmpl-{chunk.get('responseId') or uuid.uuid4().hex}"
        self._model = self.model or chunk.get("modelVersion") or self._model
        out = []
        candidates = [c for c in chunk.get("candidates") or () if isinstance(c, dict)]
        for position, candidate in enumerate(candidates):
            out += self._candidate(candidate.get("index", position), candidate)
        if not candidates and _dig(chunk, "promptFeedback", "blockReason"):
            out += self._start(0)
            out += self._finish(0, "content_filter")
        metadata = chunk.get("usageMetadata")
        if isinstance(metadata, dict):
            self.usage = usage_from_gemini(metadata)
            if self._finished and not self._open:
                # The usage chunk follows once settled, with the cost.
                self.done = True
        return b"".join(out)

    def _chunk(self, index: int, delta: dict, finish: str | None = None) -> bytes:
        return sse(
            {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "choices": [
                    {
                        "index": index,
                        "delta": delta,
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
            }
        )

    def _start(self, index: int) -> list[bytes]:
        if index in self._calls:
            return []
        self._calls[index] = 0
        self._open.add(index)
        return [self._chunk(index, {"role": "assistant", "content": ""})]

    def _finish(self, index: int, reason: str) -> list[bytes]:
        if index not in self._open:
            return []
        self._open.discard(index)
        self._finished = True
        return [self._chunk(index, {}, reason)]

    def _candidate(self, index: int, candidate: dict) -> list[bytes]:
        out = self._start(index)
        for part in _answer_parts(candidate):
            if isinstance(part.get("text"), str) and part["text"]:
                self.text.append(part["text"])
                out.append(self._chunk(index, {"content": part["text"]}))
            elif isinstance(part.get("functionCall"), dict):
                call = _tool_call(part, _call_id(part["functionCall"]))
                self.text.append(call["function"]["arguments"])
                # Gemini sends each call whole: one delta carries all of it.
                delta = {"tool_calls": [{"index": self._calls[index], **call}]}
                self._calls[index] += 1
                out.append(self._chunk(index, delta))
        reason = finish_reason(candidate.get("finishReason"))
        if reason:
            if reason == "stop" and self._calls[index]:
                reason = "tool_calls"
            out += self._finish(index, reason)
        return out

    def chunk_base(self) -> dict:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
        }


# -- adapter -------------------------------------------------------------


class GeminiAdapter(ChatAdapter):
    def chat_request(
        self, channel: ChannelInfo, payload: dict, *, stream: bool
    ) -> httpx.Request:
        headers = {"content-type": "application/json", "accept-encoding": "identity"}
        if channel.api_key:
            headers["x-goog-api-key"] = channel.api_key
        if stream:
            headers["accept"] = "text/event-stream"
        return httpx.Request(
            "POST",
            upstream.url(self.chat_url(channel, payload, stream=stream)),
            headers=headers,
            content=orjson.dumps(request_body(payload)),
        )

    def chat_url(self, channel: ChannelInfo, payload: dict, *, stream: bool) -> str:
        model = str(payload.get("model") or "").removeprefix("models/")
        model = urllib.parse.quote(model, safe="")
        if stream:
            return f"{channel.base_url}/models/{model}:streamGenerateContent?alt=sse"
        return f"{channel.base_url}/models/{model}:generateContent"

    def chat_response(
        self, raw: bytes, model: str | None = None
    ) -> tuple[bytes, TokenUsage | None]:
        body = orjson.loads(raw)
        if not isinstance(body, dict):
            raise ValueError("a generateContent answer is a JSON object")
        metadata = body.get("usageMetadata")
        usage = usage_from_gemini(metadata) if isinstance(metadata, dict) else None
        return orjson.dumps(completion_from(body, model)), usage

    def chat_stream(
        self, *, forward_usage: bool, model: str | None = None
    ) -> GeminiStream:
        return GeminiStream(forward_usage=forward_usage, model=model)

    def transport(self) -> httpx.AsyncBaseTransport:
        return upstream.transport()

    def error_body(self, raw: bytes) -> dict:
        """Return the OpenAI error body for a Gemini error answer."""
        try:
            error = orjson.loads(raw).get("error")
        except (orjson.JSONDecodeError, AttributeError):
            error = None
        return {"error": openai_error(error or "The upstream provider failed.")}

    def channel_fault(self, status: int, raw: bytes) -> bool:
        """
        Return whether an error answer blames the channel, not the request.
        Gemini answers a bad API key with 400 INVALID_ARGUMENT, the status it
        uses for bad requests; only the error's details tell them apart.
        """
        if status != 400:
            return False
        try:
            details = orjson.loads(raw)["error"].get("details") or ()
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return False
        return any(
            isinstance(item, dict) and item.get("reason") == "API_KEY_INVALID"
            for item in details
        )
