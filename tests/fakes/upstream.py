"""Fake OpenAI-compatible upstream provider served over real HTTP.

The relay's tests and benchmark talk to this server exactly as they would
talk to api.openai.com, so it speaks OpenAI's wire formats byte for byte
where it matters: ``chat.completion`` objects and ``chat.completion.chunk``
server-sent events ending in ``data: [DONE]``, legacy ``text_completion``
objects (streamed as the same object shape), embedding lists (float or
base64), the usage object (including ``stream_options.include_usage``
semantics) and ``{"error": {...}}`` bodies. Unknown request fields are
ignored, as the real API ignores the ones it does not know.

Routes (``{prefix}`` is empty for the ``default`` scenario, or ``/s/<name>``)::

    POST {prefix}/v1/chat/completions
    POST {prefix}/v1/completions
    POST {prefix}/v1/embeddings
    POST {prefix}/v1/images/generations
    GET  {prefix}/v1/models
    POST   {prefix}/v1/responses
    GET    {prefix}/v1/responses/<id>
    DELETE {prefix}/v1/responses/<id>
    POST   {prefix}/v1/responses/<id>/cancel
    GET    {prefix}/v1/responses/<id>/input_items
    POST /openai/deployments/<deployment>/{chat/completions,completions,embeddings,
                                           images/generations}
    POST /openai/responses, and GET/DELETE /openai/responses/<id>, POST
         /openai/responses/<id>/cancel, GET /openai/responses/<id>/input_items
         (Azure OpenAI: ``?api-version=`` and an ``api-key`` header required;
         the ``/openai/v1/responses...`` form needs no api-version; the body's
         ``model`` is the deployment, echoed as given)

A scenario's ``require_key`` is matched against the bearer token, or Azure's
``api-key`` header when there is none.

Token accounting is deterministic so tests can predict billed figures.

Chat completions (:func:`expected_usage`):

* ``prompt_tokens`` = 3 per message + number of whitespace-separated words in
  every message's text content (string content, or the ``text`` of
  ``{"type": "text"}`` parts) + 3 for the reply primer.
* ``completion_tokens`` = number of reply chunks (one per word) after any
  ``max_tokens`` / ``max_completion_tokens`` truncation, plus the scenario's
  ``reasoning_tokens`` (reasoning counts as completion, as in the real API).
* ``cached_tokens`` = the scenario's ``cached_tokens``, capped at
  ``prompt_tokens`` because the real API never reports more cached than sent.
* A tool call (see below) replaces the text: ``completion_tokens`` =
  :data:`TOOL_CALL_TOKENS` + ``reasoning_tokens``, whatever the token limit.

Responses API (:func:`expected_responses_usage`):

* ``input_tokens`` = 3 + the words of ``instructions`` (a string, or items
  counted as below) + for every ``input`` item 3 + the words of its text (a
  string ``input`` is one user message), + the ``input_tokens`` and
  ``output_tokens`` of the ``previous_response_id`` response, which is how a
  test sees that the stored context was used. An item's text is a message's
  string content or the ``text`` of its parts, a ``function_call``'s
  ``arguments``, a ``function_call_output``'s ``output`` (string or parts), a
  ``custom_tool_call``'s ``input``, a reasoning item's summary texts; other
  items have none. Tools are not counted (as in chat).
* ``cached_tokens`` = the scenario's ``cached_tokens``, capped at
  ``input_tokens``; ``cache_write_tokens`` is always 0.
* ``output_tokens`` = reply words after ``max_output_tokens`` truncation (then
  ``status`` is ``incomplete`` with reason ``max_output_tokens``), or
  :data:`TOOL_CALL_TOKENS` for a tool call, + the scenario's
  ``reasoning_tokens`` (``output_tokens_details.reasoning_tokens``). With
  reasoning tokens a ``reasoning`` item precedes the answer, carrying
  ``encrypted_content`` when ``include`` asks for
  ``reasoning.encrypted_content``.
* Responses whose ``store`` is not false are kept, owned by the API key that
  created them (``Authorization: Bearer`` or Azure's ``api-key``): retrieve,
  delete, cancel and input_items with another key get 404, and a
  ``previous_response_id`` another key created (or an unknown or unstored
  one) gets 400 ``previous_response_not_found``, as the real API answers.
  ``background: true`` answers ``queued`` (always stored); the first
  retrieve finds it completed, a cancel before that makes it ``cancelled``
  (no usage). Cancelling a finished background response returns it as it
  is; a foreground one gets 400 "Cannot cancel a synchronous response.".
  Retrieve ignores its query (``stream`` and ``include`` included);
  ``input_items`` pages with ``order`` (default ``desc``), ``limit`` (1-100,
  default 20) and ``after``, listing this request's input (not the
  instructions, nor the previous response's items).
* Streams send the real event sequence with ``event:`` lines and
  ``sequence_number``: ``response.created``, ``response.in_progress``, the
  output items (``output_item.added``, ``content_part.added``, one
  ``output_text.delta`` per word, ``output_text.done``,
  ``content_part.done``, ``output_item.done``) and ``response.completed``
  or ``response.incomplete``; no ``[DONE]``, as in the real API.

Tool calls (opt-in, :func:`planned_tool_call`): with ``call_tools=True`` the
fake calls the request's first function tool (in Responses, a function inside
a ``namespace`` tool too) with :data:`TOOL_ARGUMENTS`; with
``tool_call={"name": ..., "arguments": ...}`` it calls that tool whatever the
request declares. ``tool_choice`` ``"none"`` gets text, a named function
choice picks that function. Once the conversation ends with the tool's answer
(a chat ``tool``/``function`` message, or a Responses
``function_call_output``/``custom_tool_call_output`` last input item) the
fake answers with text, so a round trip completes. Streams send the call's id
and name first, then its arguments in 2 or more fragments (each counts as a
content chunk for the stream knobs); chat finishes with ``tool_calls``.

Stream knobs shared by chat, legacy completions and Responses (each counts
content chunks: reply words, or argument fragments): ``chunk_delay``,
``drop_after_chunks`` (the connection is closed after N; a request that does
not stream is dropped at once), ``error_after_chunks`` (after N the
provider's own error event is sent and the body ends cleanly: chat and
completions ``data: {"error": {...}}`` without ``[DONE]``; Responses an
``error`` event then ``response.failed`` with ``output: []`` and ``usage:
null``, as in the API's documented example; requests that do not stream are
unaffected), and ``split_utf8`` (every event holding a multi-byte UTF-8
character goes out in two writes cut inside that character).

Legacy completions (:func:`expected_completion_usage`):

* ``prompt`` is split into prompts as the API does: a string or an array of
  token ids is one prompt; an array of strings or of token-id arrays is one
  prompt per item. Every prompt gets ``n`` choices, indexed prompt by prompt.
* ``prompt_tokens`` = for every prompt, its words (a string; at least 1, an
  empty prompt being ``<|endoftext|>``) or its length (token ids), plus the
  words of ``suffix``. There is no message framing.
* Each choice's text is the scenario's reply cut to ``max_tokens`` words
  (default **16**, the API's), ``finish_reason`` ``"length"`` when cut.
  With ``echo`` the (string) prompt is prepended; it costs no output tokens.
* ``completion_tokens`` = reply words x max(``n``, ``best_of``) x prompts:
  ``best_of`` candidates are generated, and billed, even if not returned.
* ``prompt_tokens_details.cached_tokens`` appears only when the scenario has
  ``cached_tokens`` (capped at ``prompt_tokens``). ``logprobs`` is always
  ``null`` and ``stop`` is accepted but never matches.

Embeddings (:func:`expected_embedding_usage`, :func:`expected_embeddings`):

* ``input`` splits into inputs like ``prompt`` above; one vector per input.
* ``prompt_tokens`` = ``total_tokens`` = sum over inputs of the words of a
  string (at least 1) or the length of a token-id array.
* Each vector has ``dimensions`` values (default 8), read from SHAKE-256 of
  the model name and the input: value = (uint16 - 32768) / 32768, exact in
  float32, so the base64 form (little-endian float32, what the official SDK
  asks for by default) decodes to exactly the float form. A shorter
  ``dimensions`` gives a prefix of the longer vector.

Image generation (:func:`expected_image_usage`):

* The model's family decides what is valid, as in the real API: a name
  containing ``dall-e-2`` or ``dall-e-3`` is that DALL·E model, any other
  name a GPT Image model (so Azure deployments may have any name).
  ``prompt`` is required (non-empty; at most 1000 / 4000 / 32000 characters
  for DALL·E 2 / DALL·E 3 / GPT Image), ``n`` is 1 to 10 (only 1 for
  DALL·E 3), ``size`` and ``quality`` must be ones the family offers
  (:data:`IMAGE_SIZES`, :data:`IMAGE_QUALITIES`; ``auto`` everywhere),
  ``style`` is DALL·E 3's only, ``response_format`` DALL·E's only, and a
  ``stream`` is refused (the fake does not stream images). A missing
  ``model`` is ``dall-e-2``, the API's old default.
* Every image is :data:`FAKE_PNG`, a 1x1 PNG, as ``b64_json``; DALL·E
  answers ``url`` unless asked for ``b64_json`` (its API's default), and
  DALL·E 3 adds ``revised_prompt``. DALL·E answers carry no ``usage``.
* GPT Image answers carry ``usage``: ``text_tokens`` = words of the prompt
  (at least 1), ``image_tokens`` = the scenario's ``image_input_tokens``,
  ``input_tokens`` = their sum, ``output_tokens`` = ``n`` x
  :data:`IMAGE_OUTPUT_TOKENS` of the quality and size (OpenAI's published
  figures; ``auto`` is taken as ``medium`` and ``1024x1024``), and
  ``total_tokens`` = input + output (none with ``image_usage=False``); also
  ``quality``, ``size``, ``output_format`` and ``background`` as resolved.
  As OpenAI's, ``input_tokens_details`` is ``{text_tokens, image_tokens}``
  alone: the Images API reports nothing read from the cache.

Run standalone for the benchmark::

    python -m tests.fakes.upstream --port 9100 [--latency 0] [--chunk-delay 0]
        [--scenario 'NAME={"chunk_delay": 0.1, "reply": "..."}' ...]

``--scenario`` adds a named scenario (served under ``/s/NAME/v1``) with the
given :class:`Scenario` knobs, so one process serves the default scenario
and, say, a slow stream side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import itertools
import os
import re
import struct
import threading
import time
import urllib.parse
import zlib
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import orjson
import uvicorn

from tests.fakes.asgi import read_body, wait_disconnect, write_event
from tests.servers import LoopbackFake, ThreadedServer

__all__ = [
    "DEFAULT_EMBEDDING_DIMENSIONS",
    "DEFAULT_MODELS",
    "DEFAULT_REPLY",
    "DEFAULT_SCENARIO",
    "FAKE_PNG",
    "IMAGE_OUTPUT_TOKENS",
    "IMAGE_QUALITIES",
    "IMAGE_SIZES",
    "LEGACY_DEFAULT_MAX_TOKENS",
    "RESPONSES_MIN_OUTPUT_TOKENS",
    "SYSTEM_FINGERPRINT",
    "TOOL_ARGUMENTS",
    "TOOL_CALL_TOKENS",
    "FakeUpstream",
    "RecordedRequest",
    "Scenario",
    "ToolCall",
    "apply_token_limit",
    "argument_fragments",
    "completion_limit",
    "completion_prompts",
    "decode_embedding",
    "drop_connection",
    "embedding_inputs",
    "embedding_vector",
    "encode_embedding",
    "expected_completion_prompt_tokens",
    "expected_completion_usage",
    "expected_embedding_tokens",
    "expected_embedding_usage",
    "expected_embeddings",
    "expected_image_usage",
    "image_family",
    "expected_prompt_tokens",
    "expected_responses_input_tokens",
    "expected_responses_usage",
    "expected_usage",
    "openai_error",
    "planned_tool_call",
    "responses_input_items",
    "split_reply",
    "status_error",
    "token_limit",
]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_SCENARIO = "default"
DEFAULT_REPLY = "Hello! This is the fake upstream."
DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o")
SYSTEM_FINGERPRINT = "fp_fakeupstream"
MAX_RECORDED = 1000
# The legacy completions API's own default when max_tokens is absent.
LEGACY_DEFAULT_MAX_TOKENS = 16
# Small vectors keep test bodies readable; real models have 1536 or 3072.
DEFAULT_EMBEDDING_DIMENSIONS = 8
MAX_EMBEDDING_DIMENSIONS = 3072
MAX_EMBEDDING_INPUTS = 2048
MAX_EMBEDDING_INPUT_TOKENS = 8192

CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
EMBEDDINGS_PATH = "/v1/embeddings"
IMAGES_PATH = "/v1/images/generations"
MODELS_PATH = "/v1/models"
RESPONSES_PATH = "/v1/responses"
SCENARIO_PREFIX = "/s/"

_VALID_ROLES = frozenset(
    {"system", "developer", "user", "assistant", "tool", "function"}
)
_TOKEN_LIMIT_PARAMS = ("max_completion_tokens", "max_tokens")
# What a tool call answers with unless the scenario names the arguments.
TOOL_ARGUMENTS = '{"location": "Paris", "unit": "celsius"}'
# Output tokens a tool call costs, whatever its arguments.
TOOL_CALL_TOKENS = 10
# The Responses API refuses a smaller max_output_tokens.
RESPONSES_MIN_OUTPUT_TOKENS = 16
_ENCRYPTED_REASONING = "reasoning.encrypted_content"
_TOOL_ANSWER_ROLES = frozenset({"tool", "function"})
_TOOL_ANSWER_ITEMS = frozenset({"function_call_output", "custom_tool_call_output"})
_RESPONSE_ROLES = frozenset({"user", "assistant", "system", "developer"})
# A pause between the two halves of a split character, so that they reach the
# reader as separate reads rather than one coalesced segment.
_ENCODING_FORMATS = ("float", "base64")
_WORD_RE = re.compile(r"\s*\S+\s*")
_MODEL_CREATED = 1686935002
_DONE_EVENT = b"data: [DONE]\n\n"
_JSON_HEADERS = [(b"content-type", b"application/json")]
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
# A per-process prefix keeps ids unique across fake instances and runs
# without paying for a random draw on every request.
_ID_PREFIX = os.urandom(4).hex()
_ids = itertools.count(1)

_BAD_JSON_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely "
    "means you aren't using your HTTP library correctly. The OpenAI API "
    "expects a JSON payload, but what was sent was not valid JSON.)"
)
_STATUS_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("invalid_request_error", "Fake upstream rejected the request.", None),
    401: (
        "invalid_request_error",
        "Incorrect API key provided.",
        "invalid_api_key",
    ),
    403: ("invalid_request_error", "Access denied by fake upstream.", None),
    404: (
        "invalid_request_error",
        "The model does not exist or you do not have access to it.",
        "model_not_found",
    ),
    429: (
        "requests",
        "Rate limit reached for requests. Please try again in 1s.",
        "rate_limit_exceeded",
    ),
}


def openai_error(
    message: str,
    error_type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """Build an OpenAI-shaped error body."""
    return {
        "error": {
            "message": message,
            "type": error_type,
            "param": param,
            "code": code,
        }
    }


def _missing(name: str) -> dict[str, Any]:
    """The real API's answer to a required parameter left out."""
    return openai_error(
        f"Missing required parameter: '{name}'.",
        param=name,
        code="missing_required_parameter",
    )


def _wrong_type(name: str, expected: str) -> dict[str, Any]:
    """The real API's answer to a parameter not of the `expected` type."""
    return openai_error(
        f"Invalid type for '{name}': expected {expected}.",
        param=name,
        code="invalid_type",
    )


def status_error(status: int) -> dict[str, Any]:
    """Return the error body the fake sends for a forced HTTP ``status``."""
    if status in _STATUS_ERRORS:
        type_, message, code = _STATUS_ERRORS[status]
        return openai_error(message, type_, None, code)
    if status >= 500:
        return openai_error(
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
        )
    return openai_error(f"Fake upstream error ({status}).")


def split_reply(text: str) -> list[str]:
    """Split ``text`` into streaming chunks: one per word, trailing space kept."""
    return _WORD_RE.findall(text)


def _content_words(content: Any) -> int:
    if isinstance(content, str):
        return len(content.split())
    if isinstance(content, list):
        return sum(
            len(part["text"].split())
            for part in content
            if isinstance(part, dict)
            and part.get("type") == "text"
            and isinstance(part.get("text"), str)
        )
    return 0


def expected_prompt_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """Return the ``prompt_tokens`` the fake reports for ``messages``."""
    total = 3
    for message in messages:
        total += 3 + _content_words(message.get("content"))
    return total


def token_limit(body: Mapping[str, Any]) -> int | None:
    """Return the smallest completion-token cap present in a request body."""
    limits = [
        body[name]
        for name in _TOKEN_LIMIT_PARAMS
        if isinstance(body.get(name), int) and not isinstance(body[name], bool)
    ]
    return min(limits) if limits else None


def apply_token_limit(chunks: list[str], limit: int | None) -> tuple[list[str], str]:
    """Truncate reply ``chunks`` to ``limit`` and return the finish_reason."""
    if limit is not None and limit < len(chunks):
        return chunks[:limit], "length"
    return chunks, "stop"


def expected_usage(
    messages: Iterable[Mapping[str, Any]],
    reply: str = DEFAULT_REPLY,
    *,
    max_tokens: int | None = None,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
    tool_call: bool = False,
) -> dict[str, Any]:
    """Return the usage object the fake reports for a request and reply.

    ``tool_call=True`` when the fake answers with a tool call instead of text.
    """
    prompt = expected_prompt_tokens(messages)
    chunks, _ = apply_token_limit(split_reply(reply), max_tokens)
    output = TOOL_CALL_TOKENS if tool_call else len(chunks)
    completion = output + reasoning_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {
            "cached_tokens": min(cached_tokens, prompt),
            "audio_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


# -- legacy completions and embeddings: inputs, tokens, vectors ------------


def _is_token_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_token_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(map(_is_token_id, value))


def _split_inputs(value: str | list[Any]) -> list[str | list[int]]:
    """Split a ``prompt`` or ``input`` into the separate items the API sees."""
    if isinstance(value, str):
        return [value]
    if value and all(map(_is_token_id, value)):
        return [list(value)]
    return list(value)


def _input_tokens(item: str | list[int]) -> int:
    if isinstance(item, str):
        return max(1, len(item.split()))
    return len(item)


def completion_prompts(prompt: str | list[Any]) -> list[str | list[int]]:
    """Return the separate prompts of a legacy ``prompt`` (``n`` choices each)."""
    return _split_inputs(prompt)


def completion_limit(body: Mapping[str, Any]) -> int:
    """Return a legacy request's ``max_tokens``, or the API default of 16."""
    value = body.get("max_tokens")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return LEGACY_DEFAULT_MAX_TOKENS


def expected_completion_prompt_tokens(
    prompt: str | list[Any], suffix: str | None = None
) -> int:
    """Return the ``prompt_tokens`` the fake reports for a legacy ``prompt``."""
    per_prompt = len(suffix.split()) if suffix else 0
    return sum(_input_tokens(item) + per_prompt for item in completion_prompts(prompt))


def expected_completion_usage(
    prompt: str | list[Any],
    reply: str = DEFAULT_REPLY,
    *,
    max_tokens: int | None = None,
    n: int = 1,
    best_of: int | None = None,
    suffix: str | None = None,
    cached_tokens: int = 0,
) -> dict[str, Any]:
    """Return the usage the fake reports for a legacy completions request.

    ``max_tokens=None`` means the request left it out: the API's 16 applies.
    """
    limit = LEGACY_DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens
    prompt_tokens = expected_completion_prompt_tokens(prompt, suffix)
    chunks, _ = apply_token_limit(split_reply(reply), limit)
    candidates = max(n, best_of or 1)
    completion = len(chunks) * candidates * len(completion_prompts(prompt))
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
    }
    if cached_tokens:
        usage["prompt_tokens_details"] = {
            "cached_tokens": min(cached_tokens, prompt_tokens),
            "audio_tokens": 0,
        }
    return usage


def embedding_inputs(value: str | list[Any]) -> list[str | list[int]]:
    """Return the separate inputs of an embeddings ``input`` (one vector each)."""
    return _split_inputs(value)


def expected_embedding_tokens(value: str | list[Any]) -> int:
    """Return the ``prompt_tokens`` the fake reports for an embeddings ``input``."""
    return sum(_input_tokens(item) for item in embedding_inputs(value))


def expected_embedding_usage(value: str | list[Any]) -> dict[str, int]:
    """Return the usage object the fake reports for an embeddings ``input``."""
    tokens = expected_embedding_tokens(value)
    return {"prompt_tokens": tokens, "total_tokens": tokens}


def embedding_vector(
    item: str | list[int], model: str, dimensions: int | None = None
) -> list[float]:
    """Return the fake's vector for one input: exact float32 values in [-1, 1)."""
    size = dimensions or DEFAULT_EMBEDDING_DIMENSIONS
    if isinstance(item, str):
        key = b"text\0" + item.encode()
    else:
        key = b"tokens\0" + ",".join(map(str, item)).encode()
    digest = hashlib.shake_256(model.encode() + b"\0" + key).digest(2 * size)
    return [(value - 32768) / 32768 for value in struct.unpack(f"<{size}H", digest)]


def expected_embeddings(
    value: str | list[Any], model: str, dimensions: int | None = None
) -> list[list[float]]:
    """Return the vectors the fake answers for an embeddings ``input``."""
    return [
        embedding_vector(item, model, dimensions) for item in embedding_inputs(value)
    ]


def encode_embedding(vector: Iterable[float]) -> str:
    """Return ``vector`` as the API's base64 of little-endian float32 values."""
    values = list(vector)
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")


def decode_embedding(data: str) -> list[float]:
    """Decode the API's base64 embedding form back into floats."""
    raw = base64.b64decode(data)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


# -- image generation ------------------------------------------------------


def _png(width: int, height: int, rgb: bytes) -> bytes:
    """Return a valid PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = (b"\0" + rgb * width) * height
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


# Every image the fake makes: one teal pixel.
FAKE_PNG = _png(1, 1, b"\x00\x80\x80")
_FAKE_PNG_B64 = base64.b64encode(FAKE_PNG).decode("ascii")
_GPT_IMAGE = "gpt-image"
IMAGE_SIZES = {
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
    _GPT_IMAGE: ("1024x1024", "1536x1024", "1024x1536"),
}
IMAGE_QUALITIES = {
    "dall-e-2": ("standard",),
    "dall-e-3": ("standard", "hd"),
    _GPT_IMAGE: ("low", "medium", "high"),
}
_IMAGE_PROMPT_LIMITS = {"dall-e-2": 1000, "dall-e-3": 4000, _GPT_IMAGE: 32000}
# GPT Image 1's output tokens per image, as OpenAI publishes them.
IMAGE_OUTPUT_TOKENS = {
    "low": {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
    "medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
    "high": {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
}
# What the fake makes of "auto" (the real API decides per prompt).
_AUTO_QUALITY = "medium"
_AUTO_SIZE = "1024x1024"


def _image_model(body: dict[str, Any]) -> Any:
    # The API's old default, when the request names no model.
    return body.get("model") or "dall-e-2"


def image_family(model: str) -> str:
    """Return ``dall-e-2``, ``dall-e-3`` or ``gpt-image`` for a model name."""
    for family in ("dall-e-2", "dall-e-3"):
        if family in model:
            return family
    return _GPT_IMAGE


def expected_image_usage(
    prompt: str,
    *,
    n: int = 1,
    quality: str | None = None,
    size: str | None = None,
    image_input_tokens: int = 0,
) -> dict[str, Any]:
    """Return the usage the fake reports for a GPT Image generation."""
    quality = _AUTO_QUALITY if quality in (None, "auto") else quality
    size = _AUTO_SIZE if size in (None, "auto") else size
    text = max(1, len(prompt.split()))
    output = n * IMAGE_OUTPUT_TOKENS[quality][size]
    details: dict[str, Any] = {
        "text_tokens": text,
        "image_tokens": image_input_tokens,
    }
    return {
        "input_tokens": text + image_input_tokens,
        "input_tokens_details": details,
        "output_tokens": output,
        "total_tokens": text + image_input_tokens + output,
    }


# -- tool calls ------------------------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    """A tool call the fake answers with instead of text."""

    name: str
    arguments: str = TOOL_ARGUMENTS
    # The Responses API's `namespace` tool that groups the called function.
    namespace: str | None = None


def _new_id(prefix: str) -> str:
    return f"{prefix}_{_ID_PREFIX}{next(_ids):012x}"


def _functions(body: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """Return (name, namespace) of every function tool a request declares."""
    found: list[tuple[str, str | None]] = []
    for tool in body.get("tools") or ():
        if not isinstance(tool, dict):
            continue
        # Chat nests the function; the Responses API does not.
        function = tool.get("function")
        if not isinstance(function, dict):
            function = tool
        if tool.get("type") == "function" and isinstance(function.get("name"), str):
            found.append((function["name"], None))
        elif tool.get("type") == "namespace":
            found.extend(
                (inner["name"], tool.get("name"))
                for inner in tool.get("tools") or ()
                if isinstance(inner, dict)
                and inner.get("type") == "function"
                and isinstance(inner.get("name"), str)
            )
    return found


def _chosen_function(choice: Any) -> str | None:
    """Return the function a ``tool_choice`` names (chat or Responses form)."""
    if not isinstance(choice, dict) or choice.get("type") != "function":
        return None
    function = choice.get("function")
    return (function if isinstance(function, dict) else choice).get("name")


def _tool_answered(body: Mapping[str, Any]) -> bool:
    """Return whether the conversation ends with a tool's result."""
    if "messages" in body:
        turns, field, answers = body.get("messages"), "role", _TOOL_ANSWER_ROLES
    else:
        turns, field, answers = body.get("input"), "type", _TOOL_ANSWER_ITEMS
    if not isinstance(turns, list) or not turns or not isinstance(turns[-1], dict):
        return False
    return turns[-1].get(field) in answers


def _arguments_text(arguments: Any) -> str:
    if arguments is None:
        return TOOL_ARGUMENTS
    return arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()


def planned_tool_call(body: Mapping[str, Any], scenario: Scenario) -> ToolCall | None:
    """Return the tool call the fake answers ``body`` with, or None for text.

    ``body`` is a chat completions or a Responses request (told apart by its
    ``messages``).
    """
    knob = scenario.tool_call
    if knob is None and not scenario.call_tools:
        return None
    if body.get("tool_choice") == "none" or _tool_answered(body):
        return None
    if knob is not None:
        return ToolCall(
            knob["name"], _arguments_text(knob.get("arguments")), knob.get("namespace")
        )
    functions = _functions(body)
    wanted = _chosen_function(body.get("tool_choice"))
    chosen = [entry for entry in functions if entry[0] == wanted]
    if not functions:
        return None
    name, namespace = (chosen or functions)[0]
    return ToolCall(name, TOOL_ARGUMENTS, namespace)


def argument_fragments(arguments: str) -> list[str]:
    """Split tool-call arguments into the fragments a stream sends (2 or 3)."""
    size = max(1, -(-len(arguments) // 3))
    pieces = [arguments[at : at + size] for at in range(0, len(arguments), size)]
    return pieces if len(pieces) >= 2 else [arguments[:1], arguments[1:]]


# -- the Responses API: inputs and usage -----------------------------------


def responses_input_items(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return a Responses request's ``input`` as items (a string: one user
    message)."""
    value = body.get("input")
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def _text_words(content: Any) -> int:
    """Count the words of a string, or of the ``text`` of every part."""
    if isinstance(content, str):
        return len(content.split())
    if isinstance(content, list):
        return sum(
            len(part["text"].split())
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return 0


_ITEM_TEXT = {
    "message": "content",
    "function_call": "arguments",
    "function_call_output": "output",
    "custom_tool_call": "input",
    "custom_tool_call_output": "output",
    "reasoning": "summary",
}


def _item_words(item: Mapping[str, Any]) -> int:
    field = _ITEM_TEXT.get(item.get("type", "message"))
    return _text_words(item.get(field)) if field else 0


def expected_responses_input_tokens(
    body: Mapping[str, Any], previous_usage: Mapping[str, Any] | None = None
) -> int:
    """Return the ``input_tokens`` the fake reports for a Responses request.

    ``previous_usage`` is the usage of the ``previous_response_id`` response.
    """
    instructions = body.get("instructions")
    if isinstance(instructions, list):
        total = sum(3 + _item_words(i) for i in instructions if isinstance(i, dict))
    else:
        total = _text_words(instructions)
    total += 3 + sum(3 + _item_words(item) for item in responses_input_items(body))
    if previous_usage:
        total += previous_usage["input_tokens"] + previous_usage["output_tokens"]
    return total


def _output_limit(body: Mapping[str, Any]) -> int | None:
    value = body.get("max_output_tokens")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def expected_responses_usage(
    body: Mapping[str, Any],
    scenario: Scenario | None = None,
    *,
    previous_usage: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the usage the fake reports for a Responses request."""
    scenario = scenario or Scenario()
    input_tokens = expected_responses_input_tokens(body, previous_usage)
    if planned_tool_call(body, scenario) is not None:
        output = TOOL_CALL_TOKENS
    else:
        output = len(apply_token_limit(scenario.chunks, _output_limit(body))[0])
    output += scenario.reasoning_tokens
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {
            "cached_tokens": min(scenario.cached_tokens, input_tokens),
            "cache_write_tokens": 0,
        },
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": scenario.reasoning_tokens},
        "total_tokens": input_tokens + output,
    }


@dataclass(frozen=True)
class Scenario:
    """Behaviour knobs for one named upstream personality.

    Frozen so the server thread always sees a consistent set of knobs;
    reconfigure by replacing the scenario with ``FakeUpstream.scenario``.
    """

    latency: float = 0.0
    status: int | None = None
    error_body: dict[str, Any] | None = None
    drop_after_chunks: int | None = None
    chunk_delay: float = 0.0
    reply: str = DEFAULT_REPLY
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    # Image tokens a GPT Image generation reports in its input (as edits do).
    image_input_tokens: int = 0
    # Whether GPT Image answers carry usage (False: a vendor that omits it).
    image_usage: bool = True
    usage_in_stream: bool = True
    require_key: str | None = None
    retry_after: int | None = 1
    models: tuple[str, ...] = DEFAULT_MODELS
    # Answer with this tool call, {"name", "arguments" (string or JSON value),
    # "namespace"}, or with a call of the request's first function tool.
    tool_call: Mapping[str, Any] | None = None
    call_tools: bool = False
    # Send the provider's error event after N content chunks, then end.
    error_after_chunks: int | None = None
    # The body of that error event (chat and completions; default a 500).
    stream_error: dict[str, Any] | None = None
    # Cut every event holding a multi-byte character across two writes.
    split_utf8: bool = False
    # A failing upstream that echoes the credentials and the host it was
    # called with in its error message, as some do.
    echo_credentials: bool = False

    def __post_init__(self) -> None:
        """Reject knob values that would make a test silently meaningless."""
        if self.tool_call is not None and not (
            isinstance(self.tool_call, Mapping)
            and isinstance(self.tool_call.get("name"), str)
            and self.tool_call["name"]
        ):
            raise ValueError("tool_call must be a mapping with a non-empty name")
        if self.error_after_chunks is not None and self.error_after_chunks < 0:
            raise ValueError("error_after_chunks must be >= 0")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"status must be a 4xx/5xx code, got {self.status}")
        if self.latency < 0 or self.chunk_delay < 0:
            raise ValueError("latency and chunk_delay must be >= 0")
        if self.drop_after_chunks is not None and self.drop_after_chunks < 0:
            raise ValueError("drop_after_chunks must be >= 0")
        if min(self.cached_tokens, self.reasoning_tokens, self.image_input_tokens) < 0:
            raise ValueError("token counts must be >= 0")

    @cached_property
    def chunks(self) -> list[str]:
        """Return the reply split into streaming chunks."""
        return split_reply(self.reply)

    @property
    def failing(self) -> bool:
        """Return whether every request gets an error response."""
        return self.status is not None or self.error_body is not None


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    query: str
    scenario: str | None
    headers: dict[str, str]
    body: Any
    raw_body: bytes
    received_at: float

    @property
    def api_key(self) -> str | None:
        """Return the bearer token (or Azure ``api-key``) the client sent."""
        return _api_key(self.headers)


def _api_key(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:]
    return headers.get("api-key")


class _DropConnectionError(Exception):
    """Ask the server to kill the connection when the transport is hidden."""


def drop_connection(send: Send) -> None:
    """Close the client's TCP connection without finishing the HTTP response."""
    # ASGI has no "abort" message; uvicorn's send is a bound method of its
    # request cycle, which owns the transport. Marking the cycle disconnected
    # stops uvicorn from logging an error or writing a fallback 500 response.
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise _DropConnectionError
    transport.close()
    cycle.disconnected = True


def _validate_common(content_type: str, body: Any) -> dict[str, Any] | None:
    """Check what every POST route requires: a JSON object naming a model."""
    if not content_type.startswith("application/json") or not isinstance(body, dict):
        return openai_error(_BAD_JSON_MESSAGE)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return openai_error(
            "you must provide a model parameter",
            param="model",
            code="missing_required_parameter",
        )
    return None


def _validate_stream(body: dict[str, Any]) -> dict[str, Any] | None:
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        return _wrong_type("stream", "a boolean")
    if body.get("stream_options") is not None and stream is not True:
        return openai_error(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
        )
    return None


def _validate_int(
    body: dict[str, Any], name: str, minimum: int, maximum: int | None = None
) -> dict[str, Any] | None:
    """Check an optional integer parameter (null means absent)."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        return _wrong_type(name, "an integer")
    if value < minimum:
        return openai_error(
            f"Invalid '{name}': integer below minimum value. Expected a value "
            f">= {minimum}, but got {value} instead.",
            param=name,
            code="integer_below_min_value",
        )
    if maximum is not None and value > maximum:
        return openai_error(
            f"Invalid '{name}': integer above maximum value. Expected a value "
            f"<= {maximum}, but got {value} instead.",
            param=name,
            code="integer_above_max_value",
        )
    return None


def _validate_type(
    body: dict[str, Any], name: str, kind: type, label: str
) -> dict[str, Any] | None:
    """Check that an optional parameter (null means absent) is of ``kind``."""
    value = body.get(name)
    if value is None or isinstance(value, kind):
        return None
    return _wrong_type(name, label)


def _validate_inputs(
    body: dict[str, Any], name: str, max_items: int | None = None
) -> dict[str, Any] | None:
    """Check a ``prompt``/``input``: string, or array of strings, token ids
    or token-id arrays (one kind per array)."""
    value = body.get(name)
    if value is None:
        return _missing(name)
    if isinstance(value, str):
        return None
    if not isinstance(value, list):
        return _wrong_type(
            name,
            "a string, an array of strings, an array of integers, or an array "
            "of integer arrays",
        )
    if not value:
        return openai_error(
            f"Invalid '{name}': empty array. Expected an array with minimum "
            "length 1, but got an empty array instead.",
            param=name,
            code="empty_array",
        )
    if max_items is not None and len(value) > max_items:
        return openai_error(
            f"Invalid '{name}': array too long. Expected an array with maximum "
            f"length {max_items}, but got an array with length {len(value)} "
            "instead.",
            param=name,
            code="array_above_max_length",
        )
    if not (
        all(isinstance(item, str) for item in value)
        or all(map(_is_token_id, value))
        or all(map(_is_token_array, value))
    ):
        return openai_error(
            f"Invalid '{name}': expected an array of strings, an array of "
            "non-negative integers, or an array of non-empty integer arrays.",
            param=name,
            code="invalid_value",
        )
    return None


def _validate_chat(content_type: str, body: Any) -> dict[str, Any] | None:
    """Return the 400 error body the real API would give, or None if valid."""
    invalid = _validate_common(content_type, body)
    if invalid is not None:
        return invalid
    messages = body.get("messages")
    if messages is None:
        return _missing("messages")
    if not isinstance(messages, list):
        return _wrong_type("messages", "an array")
    if not messages:
        return openai_error(
            "Invalid 'messages': empty array. Expected an array with minimum "
            "length 1, but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _VALID_ROLES:
            return openai_error(
                f"Invalid value for 'messages[{index}].role'.",
                param=f"messages[{index}].role",
                code="invalid_value",
            )
    invalid = _validate_stream(body)
    if invalid is not None:
        return invalid
    for name in _TOKEN_LIMIT_PARAMS:
        invalid = _validate_int(body, name, 1)
        if invalid is not None:
            return invalid
    return None


def _validate_completions(content_type: str, body: Any) -> dict[str, Any] | None:
    """Validate a legacy ``/v1/completions`` request like the real API."""
    checks = (
        lambda: _validate_common(content_type, body),
        lambda: _validate_inputs(body, "prompt"),
        lambda: _validate_stream(body),
        lambda: _validate_int(body, "max_tokens", 0),
        lambda: _validate_int(body, "n", 1, 128),
        lambda: _validate_int(body, "best_of", 1, 20),
        lambda: _validate_int(body, "logprobs", 0, 5),
        lambda: _validate_type(body, "echo", bool, "a boolean"),
        lambda: _validate_type(body, "suffix", str, "a string"),
        lambda: _validate_type(body, "stop", str | list, "a string or an array"),
    )
    for check in checks:
        invalid = check()
        if invalid is not None:
            return invalid
    best_of = body.get("best_of")
    if best_of is not None and best_of < (body.get("n") or 1):
        return openai_error(
            "best_of must be greater than or equal to n.", param="best_of"
        )
    if best_of is not None and best_of > 1 and body.get("stream") is True:
        return openai_error("Cannot stream results with best_of > 1.", param="best_of")
    return None


def _validate_embeddings(content_type: str, body: Any) -> dict[str, Any] | None:
    """Validate a ``/v1/embeddings`` request like the real API."""
    checks = (
        lambda: _validate_common(content_type, body),
        lambda: _validate_inputs(body, "input", MAX_EMBEDDING_INPUTS),
        lambda: _validate_int(body, "dimensions", 1, MAX_EMBEDDING_DIMENSIONS),
    )
    for check in checks:
        invalid = check()
        if invalid is not None:
            return invalid
    inputs = embedding_inputs(body["input"])
    for index, item in enumerate(inputs):
        if isinstance(item, str) and not item:
            param = "input" if isinstance(body["input"], str) else f"input[{index}]"
            return openai_error(
                f"Invalid '{param}': empty string. Expected a non-empty string.",
                param=param,
                code="empty_string",
            )
        if _input_tokens(item) > MAX_EMBEDDING_INPUT_TOKENS:
            return openai_error(
                f"This model's maximum context length is "
                f"{MAX_EMBEDDING_INPUT_TOKENS} tokens, however you requested "
                f"{_input_tokens(item)} tokens in input[{index}]. Please reduce "
                "your input.",
                param="input",
                code="context_length_exceeded",
            )
    encoding = body.get("encoding_format")
    if encoding is not None and encoding not in _ENCODING_FORMATS:
        return openai_error(
            f"Invalid value for 'encoding_format': {encoding!r}. Supported "
            "values are: 'float' and 'base64'.",
            param="encoding_format",
            code="invalid_value",
        )
    if body.get("dimensions") is not None and "ada-002" in body["model"]:
        return openai_error(
            "This model does not support specifying dimensions.",
            param="dimensions",
        )
    return None


def _validate_choice(
    body: dict[str, Any], name: str, allowed: Iterable[str]
) -> dict[str, Any] | None:
    """Check an optional string parameter against the values offered."""
    value = body.get(name)
    if value is None or value in allowed:
        return None
    if not allowed:
        return openai_error(
            f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter"
        )
    supported = ", ".join(f"'{option}'" for option in allowed)
    return openai_error(
        f"Invalid value: {value!r}. Supported values are: {supported}.",
        param=name,
        code="invalid_value",
    )


def _validate_images(content_type: str, body: Any) -> dict[str, Any] | None:
    """Validate a ``/v1/images/generations`` request like the real API."""
    if not content_type.startswith("application/json") or not isinstance(body, dict):
        return openai_error(_BAD_JSON_MESSAGE)
    model = _image_model(body)
    if not isinstance(model, str):
        return _wrong_type("model", "a string")
    family = image_family(model)
    prompt = body.get("prompt")
    if prompt is None:
        return _missing("prompt")
    if not isinstance(prompt, str):
        return _wrong_type("prompt", "a string")
    if not prompt:
        return openai_error(
            "Invalid 'prompt': empty string. Expected a non-empty string.",
            param="prompt",
            code="empty_string",
        )
    limit = _IMAGE_PROMPT_LIMITS[family]
    if len(prompt) > limit:
        return openai_error(
            f"Invalid 'prompt': string too long. Expected a string with maximum "
            f"length {limit}, but got a string with length {len(prompt)} instead.",
            param="prompt",
            code="string_above_max_length",
        )
    dall_e = family != _GPT_IMAGE
    checks = (
        lambda: _validate_int(body, "n", 1, 10),
        lambda: _validate_choice(body, "size", (*IMAGE_SIZES[family], "auto")),
        lambda: _validate_choice(body, "quality", (*IMAGE_QUALITIES[family], "auto")),
        lambda: _validate_choice(
            body, "response_format", ("url", "b64_json") if dall_e else ()
        ),
        lambda: _validate_choice(
            body, "style", ("vivid", "natural") if family == "dall-e-3" else ()
        ),
    )
    for check in checks:
        invalid = check()
        if invalid is not None:
            return invalid
    if family == "dall-e-3" and (body.get("n") or 1) != 1:
        return openai_error("You must provide n=1 for this model.", param="n")
    if body.get("stream") is not None and body["stream"] is not False:
        return openai_error("The fake upstream does not stream images.", param="stream")
    return None


def _validate_response_input(body: dict[str, Any]) -> dict[str, Any] | None:
    value = body.get("input")
    if value is None:
        if body.get("previous_response_id") is not None:
            return None
        return _missing("input")
    if isinstance(value, str):
        return None
    if not isinstance(value, list):
        return _wrong_type("input", "one of a string or an array of input items")
    for index, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("type", ""), str):
            return _wrong_type(f"input[{index}]", "an input item")
        kind = item.get("type", "message")
        if kind == "message" and item.get("role") not in _RESPONSE_ROLES:
            return openai_error(
                f"Invalid value: {item.get('role')!r}. Supported values are: "
                "'assistant', 'system', 'developer', and 'user'.",
                param=f"input[{index}].role",
                code="invalid_value",
            )
        if kind in _TOOL_ANSWER_ITEMS and not isinstance(item.get("call_id"), str):
            return _missing(f"input[{index}].call_id")
    return None


def _validate_response_tools(body: dict[str, Any]) -> dict[str, Any] | None:
    for index, tool in enumerate(body.get("tools") or ()):
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            return _missing(f"tools[{index}].type")
        # Chat's nested {"function": {...}} form is refused here, as it is
        # by the real API: the name sits on the tool itself.
        if tool["type"] == "function" and not isinstance(tool.get("name"), str):
            return _missing(f"tools[{index}].name")
    return None


def _validate_responses(content_type: str, body: Any) -> dict[str, Any] | None:
    """Validate a ``POST /v1/responses`` request like the real API."""
    if not content_type.startswith("application/json") or not isinstance(body, dict):
        return openai_error(_BAD_JSON_MESSAGE)
    if body.get("model") is None:
        return _missing("model")
    checks = (
        lambda: _validate_type(body, "model", str, "a string"),
        lambda: _validate_response_input(body),
        lambda: _validate_type(body, "stream", bool, "a boolean"),
        lambda: _validate_type(body, "store", bool, "a boolean"),
        lambda: _validate_type(body, "background", bool, "a boolean"),
        lambda: _validate_type(body, "parallel_tool_calls", bool, "a boolean"),
        lambda: _validate_type(body, "previous_response_id", str, "a string"),
        lambda: _validate_type(body, "instructions", str | list, "a string"),
        lambda: _validate_type(body, "include", list, "an array"),
        lambda: _validate_type(body, "tools", list, "an array"),
        lambda: _validate_type(body, "metadata", dict, "an object"),
        lambda: _validate_type(body, "reasoning", dict, "an object"),
        lambda: _validate_type(body, "text", dict, "an object"),
        lambda: _validate_type(body, "temperature", int | float, "a number"),
        lambda: _validate_type(body, "top_p", int | float, "a number"),
        lambda: _validate_int(body, "max_output_tokens", RESPONSES_MIN_OUTPUT_TOKENS),
        lambda: _validate_int(body, "max_tool_calls", 1),
        lambda: _validate_int(body, "top_logprobs", 0, 20),
        lambda: _validate_response_tools(body),
    )
    for check in checks:
        invalid = check()
        if invalid is not None:
            return invalid
    return None


AZURE_ROUTE = re.compile(
    r"/openai/deployments/([^/]+)/"
    r"(chat/completions|completions|embeddings|images/generations)"
)
# Azure's Responses routes: `/openai/responses?api-version=...` or the v1 form.
AZURE_RESPONSES_ROUTE = re.compile(
    r"/openai(/v1)?/responses(/[^/]+(?:/cancel|/input_items)?)?"
)
RESPONSE_ROUTE = re.compile(r"/v1/responses(?:/([^/]+)(/cancel|/input_items)?)?")
# (method, names a response, tail) -> what the request asks of the store.
_RESPONSE_ACTIONS = {
    ("POST", False, None): "create",
    ("GET", True, None): "retrieve",
    ("DELETE", True, None): "delete",
    ("POST", True, "/cancel"): "cancel",
    ("GET", True, "/input_items"): "input_items",
}
_ROUTES = frozenset(
    {
        ("POST", CHAT_PATH),
        ("POST", COMPLETIONS_PATH),
        ("POST", EMBEDDINGS_PATH),
        ("POST", IMAGES_PATH),
        ("GET", MODELS_PATH),
    }
)
_VALIDATORS: dict[str, Callable[[str, Any], dict[str, Any] | None]] = {
    CHAT_PATH: _validate_chat,
    COMPLETIONS_PATH: _validate_completions,
    EMBEDDINGS_PATH: _validate_embeddings,
    IMAGES_PATH: _validate_images,
}


def _responses_action(method: str, route: str) -> tuple[str, str | None] | None:
    """Return (action, response id) for a Responses API route, else None."""
    found = RESPONSE_ROUTE.fullmatch(route)
    if found is None:
        return None
    response_id, tail = found.groups()
    action = _RESPONSE_ACTIONS.get((method, response_id is not None, tail))
    return None if action is None else (action, response_id)


def _split_path(path: str) -> tuple[str | None, str]:
    """Split a request path into (scenario name, API route)."""
    if not path.startswith(SCENARIO_PREFIX):
        return DEFAULT_SCENARIO, path
    name, sep, rest = path[len(SCENARIO_PREFIX) :].partition("/")
    if not name or not sep:
        return None, path
    return name, "/" + rest


def _sse(payload: Any) -> bytes:
    """Encode one server-sent event carrying ``payload`` as JSON."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def _send_json(
    send: Send,
    status: int,
    payload: Any,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = orjson.dumps(payload)
    headers = [
        *_JSON_HEADERS,
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", f"req_{_ID_PREFIX}{next(_ids):012x}".encode()),
    ]
    if extra_headers:
        headers.extend(extra_headers)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# -- the Responses API: answers and the store --------------------------------

_RESPONSE_FAILED = {
    "code": "server_error",
    "message": "The model failed to generate a response.",
}
_RESPONSE_STREAM_ERROR = {
    "type": "error",
    "code": "server_error",
    "message": status_error(500)["error"]["message"],
    "param": None,
}
_MAX_LISTED_ITEMS = 100


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _listed_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """Return an input item as ``input_items`` lists it: typed, with an id."""
    listed = dict(item)
    kind = listed["type"] = item.get("type", "message")
    if kind == "message":
        content = item.get("content")
        if isinstance(content, str):
            part = "output_text" if item.get("role") == "assistant" else "input_text"
            listed["content"] = [{"type": part, "text": content}]
        listed.setdefault("status", "completed")
    if not listed.get("id"):
        listed["id"] = _new_id("msg" if kind == "message" else "item")
    return listed


class _ResponsePlan:
    """One Responses answer, decided before anything is sent."""

    def __init__(
        self,
        body: dict[str, Any],
        scenario: Scenario,
        previous_usage: Mapping[str, Any] | None,
    ) -> None:
        self.body = body
        self.id = _new_id("resp")
        self.created_at = int(time.time())
        self.background = body.get("background") is True
        # A background response must be kept to be polled at all.
        self.stored = self.background or body.get("store") is not False
        self.usage = expected_responses_usage(
            body, scenario, previous_usage=previous_usage
        )
        self.input_items = [_listed_item(i) for i in responses_input_items(body)]
        self.reasoning: dict[str, Any] | None = None
        if scenario.reasoning_tokens:
            self.reasoning = {"id": _new_id("rs"), "type": "reasoning", "summary": []}
            if _ENCRYPTED_REASONING in (body.get("include") or ()):
                sealed = f"fake-reasoning:{self.reasoning['id']}".encode()
                self.reasoning["encrypted_content"] = base64.b64encode(sealed).decode()
        call = planned_tool_call(body, scenario)
        self.incomplete = False
        if call is not None:
            self.answer: dict[str, Any] = {
                "id": _new_id("fc"),
                "type": "function_call",
                "status": "completed",
                "arguments": call.arguments,
                "call_id": _new_id("call"),
                "name": call.name,
            }
            if call.namespace is not None:
                self.answer["namespace"] = call.namespace
            self.chunks = argument_fragments(call.arguments)
        else:
            chunks, finish = apply_token_limit(scenario.chunks, _output_limit(body))
            self.incomplete = finish == "length"
            self.answer = {
                "id": _new_id("msg"),
                "type": "message",
                "status": "incomplete" if self.incomplete else "completed",
                "role": "assistant",
                "content": [_output_text("".join(chunks))],
            }
            self.chunks = chunks

    @property
    def output(self) -> list[dict[str, Any]]:
        return [item for item in (self.reasoning, self.answer) if item is not None]

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Return the response object in ``status``, echoing the request."""
        body = self.body
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": self.background,
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": body.get("max_tool_calls"),
            "model": body["model"],
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "prompt_cache_key": body.get("prompt_cache_key"),
            "reasoning": {
                "effort": None,
                "summary": None,
                **(body.get("reasoning") or {}),
            },
            "safety_identifier": body.get("safety_identifier"),
            "service_tier": "default",
            "store": self.stored,
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text")
            or {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_logprobs": body.get("top_logprobs", 0),
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": usage,
            "user": body.get("user"),
            "metadata": body.get("metadata") or {},
            **fields,
        }

    def final(self) -> dict[str, Any]:
        """Return the finished response: completed, or cut by the limit."""
        if self.incomplete:
            return self.response(
                "incomplete",
                self.output,
                self.usage,
                incomplete_details={"reason": "max_output_tokens"},
            )
        return self.response("completed", self.output, self.usage)

    def failed(self) -> dict[str, Any]:
        """Return the response a mid-stream failure ends with."""
        return self.response("failed", [], None, error=_RESPONSE_FAILED)

    def stream(self) -> tuple[list[dict], list[dict], list[dict]]:
        """Return the stream's head, content and tail events, unnumbered."""
        started = self.response("in_progress", [], None)
        head: list[dict[str, Any]] = [
            {"type": "response.created", "response": started},
            {"type": "response.in_progress", "response": started},
        ]
        if self.reasoning is not None:
            for kind in ("added", "done"):
                head.append(_item_event(kind, 0, self.reasoning))
        index = len(self.output) - 1
        if self.answer["type"] == "function_call":
            opening, content, closing = self._call_events(index)
        else:
            opening, content, closing = self._text_events(index)
        final = self.final()
        tail = [
            *closing,
            _item_event("done", index, self.answer),
            {"type": f"response.{final['status']}", "response": final},
        ]
        return [*head, *opening], content, tail

    def _call_events(self, index: int) -> tuple[list[dict], list[dict], list[dict]]:
        """Return a function call's opening, argument deltas and closing."""
        call = self.answer
        opened = {**call, "status": "in_progress", "arguments": ""}
        where = {"item_id": call["id"], "output_index": index}
        prefix = "response.function_call_arguments"
        deltas = [
            {"type": f"{prefix}.delta", **where, "delta": piece}
            for piece in self.chunks
        ]
        done = {"type": f"{prefix}.done", **where, "arguments": call["arguments"]}
        return [_item_event("added", index, opened)], deltas, [done]

    def _text_events(self, index: int) -> tuple[list[dict], list[dict], list[dict]]:
        """Return a message's opening, text deltas and closing."""
        message = self.answer
        text = message["content"][0]["text"]
        opened = {**message, "status": "in_progress", "content": []}
        where = {"item_id": message["id"], "output_index": index, "content_index": 0}
        part = "response.content_part"
        opening = [
            _item_event("added", index, opened),
            {"type": f"{part}.added", **where, "part": _output_text("")},
        ]
        deltas = [
            {
                "type": "response.output_text.delta",
                **where,
                "delta": piece,
                "logprobs": [],
            }
            for piece in self.chunks
        ]
        closing = [
            {
                "type": "response.output_text.done",
                **where,
                "text": text,
                "logprobs": [],
            },
            {"type": f"{part}.done", **where, "part": _output_text(text)},
        ]
        return opening, deltas, closing


def _item_event(kind: str, index: int, item: dict[str, Any]) -> dict[str, Any]:
    """Return an ``output_item.added`` or ``.done`` event."""
    return {"type": f"response.output_item.{kind}", "output_index": index, "item": item}


def _response_event(payload: dict[str, Any], number: int) -> bytes:
    """Encode one Responses stream event, named and numbered."""
    data = orjson.dumps({**payload, "sequence_number": number})
    return b"event: " + payload["type"].encode() + b"\ndata: " + data + b"\n\n"


def _list_items(items: list[dict[str, Any]], query: str) -> tuple[int, dict[str, Any]]:
    """Page through a response's input items as ``input_items`` does."""
    params = dict(urllib.parse.parse_qsl(query))
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        return 400, openai_error(
            f"Invalid value: {order!r}. Supported values are: 'asc' and 'desc'.",
            param="order",
            code="invalid_value",
        )
    limit = params.get("limit", "20")
    if not limit.isdigit() or not 1 <= int(limit) <= _MAX_LISTED_ITEMS:
        return 400, openai_error(
            f"Invalid 'limit': expected an integer between 1 and "
            f"{_MAX_LISTED_ITEMS}, but got {limit!r} instead.",
            param="limit",
            code="invalid_value",
        )
    ordered = items if order == "asc" else items[::-1]
    after = params.get("after")
    if after is not None:
        ids = [item["id"] for item in ordered]
        ordered = ordered[ids.index(after) + 1 :] if after in ids else []
    page = ordered[: int(limit)]
    return 200, {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(ordered) > len(page),
    }


@dataclass
class _StoredResponse:
    """A kept response: its owner's key, its state now, and what it will be."""

    owner: str | None
    response: dict[str, Any]
    final: dict[str, Any]
    input_items: list[dict[str, Any]]


class FakeUpstream(LoopbackFake):
    """A fake OpenAI upstream: an ASGI app plus a uvicorn server thread.

    Configure behaviour per scenario with :meth:`scenario`, point a client at
    :meth:`url`, and inspect :attr:`requests`, :attr:`request_counts` and
    :attr:`aborted_streams` afterwards. The instance itself is the ASGI app.
    """

    uvicorn_options = {"interface": "asgi3", "proxy_headers": False}

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        """Prepare (but do not start) a fake bound to ``host``:``port``."""
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._scenarios: dict[str, Scenario] = {DEFAULT_SCENARIO: Scenario()}
        self._requests: deque[RecordedRequest] = deque(maxlen=MAX_RECORDED)
        self._request_counts: Counter[str] = Counter()
        self._aborted_counts: Counter[str] = Counter()
        self._responses: dict[str, _StoredResponse] = {}
        self._server: ThreadedServer | None = None

    # -- configuration -----------------------------------------------------

    def scenario(self, name: str = DEFAULT_SCENARIO, **knobs: Any) -> Scenario:
        """Create or replace scenario ``name`` with ``knobs`` (see Scenario)."""
        if not name or "/" in name:
            raise ValueError(f"invalid scenario name {name!r}")
        if "models" in knobs:
            knobs["models"] = tuple(knobs["models"])
        created = Scenario(**knobs)
        with self._lock:
            self._scenarios[name] = created
        return created

    def get_scenario(self, name: str = DEFAULT_SCENARIO) -> Scenario:
        """Return the knobs currently in force for scenario ``name``."""
        return self._scenarios[name]

    def reset(self) -> None:
        """Forget all scenarios, recorded requests and counters."""
        with self._lock:
            self._scenarios = {DEFAULT_SCENARIO: Scenario()}
            self._requests.clear()
            self._request_counts.clear()
            self._aborted_counts.clear()
            self._responses.clear()

    # -- inspection --------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Return a snapshot of the last requests received, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, scenario: str = DEFAULT_SCENARIO) -> list[RecordedRequest]:
        """Return the recorded requests routed to ``scenario``."""
        return [r for r in self.requests if r.scenario == scenario]

    @property
    def last_request(self) -> RecordedRequest | None:
        """Return the most recent request, or None if none arrived."""
        with self._lock:
            return self._requests[-1] if self._requests else None

    @property
    def request_counts(self) -> Counter[str]:
        """Return a snapshot of request counts keyed by scenario name."""
        with self._lock:
            return Counter(self._request_counts)

    @property
    def aborted_streams(self) -> int:
        """Return how many streams the client abandoned before [DONE]."""
        with self._lock:
            return sum(self._aborted_counts.values())

    @property
    def aborted_counts(self) -> Counter[str]:
        """Return a snapshot of abandoned-stream counts keyed by scenario."""
        with self._lock:
            return Counter(self._aborted_counts)

    def stored_response(self, response_id: str) -> dict[str, Any] | None:
        """Return a kept Responses object as it stands now, or None."""
        with self._lock:
            stored = self._responses.get(response_id)
            return None if stored is None else dict(stored.response)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
        """Poll ``predicate`` until true or ``timeout``; return its last value."""
        # The server notices disconnects asynchronously, so assertions about
        # aborted streams must allow it a moment to catch up.
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return predicate()
            time.sleep(0.005)
        return True

    # -- addresses ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Return ``http://host:port`` of the running server."""
        if self._server is None:
            raise RuntimeError("FakeUpstream is not started")
        return f"http://{self.host}:{self.port}"

    def url(self, scenario: str = DEFAULT_SCENARIO) -> str:
        """Return the OpenAI base URL (ending in ``/v1``) for ``scenario``."""
        if scenario == DEFAULT_SCENARIO:
            return f"{self.base_url}/v1"
        return f"{self.base_url}{SCENARIO_PREFIX}{scenario}/v1"

    # -- server lifecycle --------------------------------------------------

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (standalone mode)."""
        server = ThreadedServer(
            self, host=self.host, port=self.port, **self.uvicorn_options
        )
        sock = server.bind()
        self.port = server.port
        print(f"Fake upstream listening on {self.host}:{self.port}", flush=True)
        print(f"OPENAI_BASE_URL=http://{self.host}:{self.port}/v1", flush=True)
        uvicorn.Server(server.uvicorn_config()).run(sockets=[sock])

    # -- ASGI app ----------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI HTTP request."""
        if scope["type"] != "http":
            return
        raw_body = await read_body(receive)
        if raw_body is None:
            return
        name, route = _split_path(scope["path"])
        headers = {
            key.decode("latin-1").lower(): value.decode("latin-1")
            for key, value in scope["headers"]
        }
        try:
            body = orjson.loads(raw_body) if raw_body else None
        except orjson.JSONDecodeError:
            body = None
        method = scope["method"]
        self._record(
            RecordedRequest(
                method=method,
                path=scope["path"],
                query=scope.get("query_string", b"").decode("latin-1"),
                scenario=name,
                headers=headers,
                body=body,
                raw_body=raw_body,
                received_at=time.monotonic(),
            )
        )

        scenario = self._scenarios.get(name) if name else None
        query = scope.get("query_string", b"").decode("latin-1")
        azure = AZURE_ROUTE.fullmatch(route)
        azure_responses = AZURE_RESPONSES_ROUTE.fullmatch(route)
        if (azure is not None and method == "POST") or azure_responses is not None:
            # Azure OpenAI: the deployment names the model, the key travels in
            # `api-key`, and api-version is mandatory (but in the v1 form).
            versioned = azure_responses is not None and azure_responses.group(1)
            if not versioned and "api-version=" not in query:
                await _send_json(
                    send, 404, openai_error("Resource not found", code="404")
                )
                return
            if not headers.get("api-key"):
                await _send_json(send, 401, status_error(401))
                return
            if azure_responses is not None:
                route = RESPONSES_PATH + (azure_responses.group(2) or "")
            else:
                if isinstance(body, dict):
                    body.setdefault("model", azure.group(1))
                route = f"/v1/{azure.group(2)}"
        responses = _responses_action(method, route)
        if (method, route) not in _ROUTES and responses is None:
            await _send_json(
                send,
                404,
                openai_error(f"Invalid URL ({method} {scope['path']})"),
            )
            return
        if scenario is None:
            await _send_json(
                send,
                404,
                openai_error(
                    f"Unknown fake-upstream scenario {name!r}; define it with "
                    "FakeUpstream.scenario() first.",
                    code="unknown_scenario",
                ),
            )
            return

        if scenario.latency:
            await asyncio.sleep(scenario.latency)
        key = scenario.require_key
        if key is not None and _api_key(headers) != key:
            await _send_json(send, 401, status_error(401))
            return

        if responses is not None:
            await self._serve_responses(
                name, scenario, responses, headers, query, body, receive, send
            )
            return
        if route == MODELS_PATH:
            if scenario.failing:
                await self._send_failure(send, scenario, headers)
                return
            await _send_json(send, 200, self._models_payload(scenario))
            return

        invalid = _VALIDATORS[route](headers.get("content-type", ""), body)
        if invalid is not None:
            await _send_json(send, 400, invalid)
            return
        if scenario.failing:
            await self._send_failure(send, scenario, headers)
            return
        # Embeddings never stream: the API has no such option, and ignores it.
        # Image streams are refused by their validator.
        if route in (CHAT_PATH, COMPLETIONS_PATH) and body.get("stream") is True:
            if route == CHAT_PATH:
                await self._stream(name, scenario, body, receive, send)
            else:
                await self._stream_text(name, scenario, body, receive, send)
            return
        if scenario.drop_after_chunks is not None:
            drop_connection(send)
            return
        if route == CHAT_PATH:
            payload = self._completion_payload(scenario, body)
        elif route == COMPLETIONS_PATH:
            payload = self._text_payload(scenario, body)
        elif route == IMAGES_PATH:
            payload = self._images_payload(scenario, body)
        else:
            payload = self._embeddings_payload(body)
        await _send_json(send, 200, payload)

    # -- the Responses API -------------------------------------------------

    async def _serve_responses(
        self,
        name: str,
        scenario: Scenario,
        action: tuple[str, str | None],
        headers: dict[str, str],
        query: str,
        body: Any,
        receive: Receive,
        send: Send,
    ) -> None:
        kind, response_id = action
        # The key stands for the OpenAI project that owns what it stores.
        key = _api_key(headers)
        if kind == "create":
            invalid = _validate_responses(headers.get("content-type", ""), body)
            if invalid is not None:
                await _send_json(send, 400, invalid)
                return
        if scenario.failing:
            await self._send_failure(send, scenario, headers)
            return
        if kind == "create":
            await self._create_response(name, scenario, body, key, receive, send)
            return
        with self._lock:
            stored = self._responses.get(response_id or "")
            if stored is None or stored.owner != key:
                status, payload = (
                    404,
                    openai_error(f"Response with id '{response_id}' not found."),
                )
            else:
                status, payload = self._act_on_stored(kind, stored, query)
        await _send_json(send, status, payload)

    def _act_on_stored(
        self, kind: str, stored: _StoredResponse, query: str
    ) -> tuple[int, dict[str, Any]]:
        """Retrieve, delete, cancel or list a kept response (lock held)."""
        response = stored.response
        if kind == "retrieve":
            # A background response is done by the time anyone polls it.
            if response["status"] == "queued":
                stored.response = response = stored.final
            return 200, response
        if kind == "delete":
            del self._responses[response["id"]]
            return 200, {"id": response["id"], "object": "response", "deleted": True}
        if kind == "cancel":
            if not response["background"]:
                return 400, openai_error("Cannot cancel a synchronous response.")
            if response["status"] == "queued":
                stored.response = response = {**response, "status": "cancelled"}
            return 200, response
        return _list_items(stored.input_items, query)

    async def _create_response(
        self,
        name: str,
        scenario: Scenario,
        body: dict[str, Any],
        key: str | None,
        receive: Receive,
        send: Send,
    ) -> None:
        previous_usage = None
        previous_id = body.get("previous_response_id")
        if previous_id is not None:
            with self._lock:
                previous = self._responses.get(previous_id)
            if previous is None or previous.owner != key:
                error = openai_error(
                    f"Previous response with id '{previous_id}' not found.",
                    param="previous_response_id",
                    code="previous_response_not_found",
                )
                await _send_json(send, 400, error)
                return
            previous_usage = previous.response.get("usage")
        plan = _ResponsePlan(body, scenario, previous_usage)
        if body.get("stream") is True:
            await self._stream_response(name, scenario, plan, key, receive, send)
            return
        if scenario.drop_after_chunks is not None:
            drop_connection(send)
            return
        final = plan.final()
        answer = plan.response("queued", [], None) if plan.background else final
        if plan.stored:
            self._keep(plan, key, answer, final)
        await _send_json(send, 200, answer)

    def _keep(
        self,
        plan: _ResponsePlan,
        key: str | None,
        response: dict[str, Any],
        final: dict[str, Any] | None = None,
    ) -> None:
        kept = _StoredResponse(key, response, final or response, plan.input_items)
        with self._lock:
            self._responses[plan.id] = kept

    async def _stream_response(
        self,
        name: str,
        scenario: Scenario,
        plan: _ResponsePlan,
        key: str | None,
        receive: Receive,
        send: Send,
    ) -> None:
        head, content, tail = plan.stream()
        numbered = itertools.count()
        # Numbers run on through the content actually sent, so a failure
        # after N deltas continues the sequence without a gap.
        head_bytes = [_response_event(e, next(numbered)) for e in head]
        content_bytes = [_response_event(e, next(numbered)) for e in content]
        tail_bytes = [_response_event(e, next(numbered)) for e in tail]

        def failure(sent: int) -> list[bytes]:
            failed = plan.failed()
            if plan.stored:
                self._keep(plan, key, failed)
            number = len(head) + sent
            return [
                _response_event(_RESPONSE_STREAM_ERROR, number),
                _response_event(
                    {"type": "response.failed", "response": failed}, number + 1
                ),
            ]

        def finish() -> None:
            if plan.stored:
                self._keep(plan, key, tail[-1]["response"])

        await self._serve_sse(
            name,
            scenario,
            receive,
            send,
            head=head_bytes,
            content=content_bytes,
            tail=tail_bytes,
            error=failure,
            done=False,
            on_finish=finish,
        )

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._request_counts[request.scenario or ""] += 1

    async def _send_failure(
        self, send: Send, scenario: Scenario, headers: Mapping[str, str]
    ) -> None:
        status = scenario.status or 500
        payload = scenario.error_body or status_error(status)
        if scenario.echo_credentials:
            error = dict(payload.get("error") or {})
            echoed = ", ".join(
                f"{name}: {headers[name]}"
                for name in ("authorization", "api-key", "x-api-key", "host")
                if name in headers
            )
            error["message"] = f"{error.get('message', 'Error')} (received {echoed})"
            payload = {**payload, "error": error}
        extra = None
        if status == 429 and scenario.retry_after is not None:
            extra = [(b"retry-after", str(scenario.retry_after).encode())]
        await _send_json(send, status, payload, extra)

    @staticmethod
    def _models_payload(scenario: Scenario) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {
                    "id": model,
                    "object": "model",
                    "created": _MODEL_CREATED,
                    "owned_by": "openai",
                }
                for model in scenario.models
            ],
        }

    @staticmethod
    def _usage(scenario: Scenario, body: dict[str, Any]) -> dict[str, Any]:
        return expected_usage(
            body["messages"],
            scenario.reply,
            max_tokens=token_limit(body),
            cached_tokens=scenario.cached_tokens,
            reasoning_tokens=scenario.reasoning_tokens,
            tool_call=planned_tool_call(body, scenario) is not None,
        )

    def _completion_payload(
        self, scenario: Scenario, body: dict[str, Any]
    ) -> dict[str, Any]:
        chunks, finish_reason = apply_token_limit(scenario.chunks, token_limit(body))
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(chunks),
            "refusal": None,
            "annotations": [],
        }
        call = planned_tool_call(body, scenario)
        if call is not None:
            finish_reason, message["content"] = "tool_calls", None
            message["tool_calls"] = [
                {
                    "id": _new_id("call"),
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
            ]
        return {
            "id": f"chatcmpl-{_ID_PREFIX}{next(_ids):012x}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": self._usage(scenario, body),
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }

    @staticmethod
    def _include_usage(scenario: Scenario, body: dict[str, Any]) -> bool:
        options = body.get("stream_options")
        return (
            scenario.usage_in_stream
            and isinstance(options, dict)
            and options.get("include_usage") is True
        )

    async def _stream(
        self,
        name: str,
        scenario: Scenario,
        body: dict[str, Any],
        receive: Receive,
        send: Send,
    ) -> None:
        include_usage = self._include_usage(scenario, body)
        chunks, finish_reason = apply_token_limit(scenario.chunks, token_limit(body))
        base = {
            "id": f"chatcmpl-{_ID_PREFIX}{next(_ids):012x}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body["model"],
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }

        def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
            chunk = {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": delta,
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
            }
            if include_usage:
                chunk["usage"] = None
            return _sse(chunk)

        opener: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
        content = [event({"content": text}) for text in chunks]
        call = planned_tool_call(body, scenario)
        if call is not None:
            # The id and name come first, then the arguments in fragments.
            finish_reason, opener["content"] = "tool_calls", None
            function = {"name": call.name, "arguments": ""}
            opener["tool_calls"] = [
                {
                    "index": 0,
                    "id": _new_id("call"),
                    "type": "function",
                    "function": function,
                }
            ]
            content = [
                event({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                for piece in argument_fragments(call.arguments)
            ]
        tail = [event({}, finish_reason)]
        if include_usage:
            tail.append(
                _sse({**base, "choices": [], "usage": self._usage(scenario, body)})
            )
        await self._serve_sse(
            name,
            scenario,
            receive,
            send,
            head=[event(opener)],
            content=content,
            tail=tail,
        )

    @staticmethod
    def _text_choices(
        scenario: Scenario, body: dict[str, Any]
    ) -> list[tuple[list[str], str]]:
        """Return each legacy choice's text pieces and its finish_reason."""
        chunks, finish_reason = apply_token_limit(
            scenario.chunks, completion_limit(body)
        )
        n = body.get("n") or 1
        echo = body.get("echo") is True
        choices = []
        for prompt in completion_prompts(body["prompt"]):
            # The fake has no tokenizer: token-id prompts echo as nothing.
            head = [prompt] if echo and isinstance(prompt, str) and prompt else []
            choices.extend([(head + chunks, finish_reason)] * n)
        return choices

    @staticmethod
    def _text_usage(scenario: Scenario, body: dict[str, Any]) -> dict[str, Any]:
        return expected_completion_usage(
            body["prompt"],
            scenario.reply,
            max_tokens=completion_limit(body),
            n=body.get("n") or 1,
            best_of=body.get("best_of"),
            suffix=body.get("suffix"),
            cached_tokens=scenario.cached_tokens,
        )

    def _text_payload(self, scenario: Scenario, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"cmpl-{_ID_PREFIX}{next(_ids):012x}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "text": "".join(pieces),
                    "index": index,
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
                for index, (pieces, finish_reason) in enumerate(
                    self._text_choices(scenario, body)
                )
            ],
            "usage": self._text_usage(scenario, body),
        }

    async def _stream_text(
        self,
        name: str,
        scenario: Scenario,
        body: dict[str, Any],
        receive: Receive,
        send: Send,
    ) -> None:
        """Stream a legacy completion: ``text_completion`` objects as events."""
        include_usage = self._include_usage(scenario, body)
        base = {
            "id": f"cmpl-{_ID_PREFIX}{next(_ids):012x}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": body["model"],
        }

        def event(index: int, text: str, finish: str | None = None) -> bytes:
            chunk = {
                **base,
                "choices": [
                    {
                        "text": text,
                        "index": index,
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
            }
            if include_usage:
                chunk["usage"] = None
            return _sse(chunk)

        choices = self._text_choices(scenario, body)
        longest = max(len(pieces) for pieces, _ in choices)
        # Choices advance together, one piece each in turn, as the API sends.
        content = [
            event(index, pieces[position])
            for position in range(longest)
            for index, (pieces, _) in enumerate(choices)
            if position < len(pieces)
        ]
        tail = [event(index, "", finish) for index, (_, finish) in enumerate(choices)]
        if include_usage:
            usage = self._text_usage(scenario, body)
            tail.append(_sse({**base, "choices": [], "usage": usage}))
        await self._serve_sse(
            name, scenario, receive, send, head=[], content=content, tail=tail
        )

    @staticmethod
    def _embeddings_payload(body: dict[str, Any]) -> dict[str, Any]:
        model = body["model"]
        as_base64 = body.get("encoding_format") == "base64"
        vectors = expected_embeddings(body["input"], model, body.get("dimensions"))
        return {
            "object": "list",
            "data": [
                {
                    "object": "embedding",
                    "index": index,
                    "embedding": encode_embedding(vector) if as_base64 else vector,
                }
                for index, vector in enumerate(vectors)
            ],
            "model": model,
            "usage": expected_embedding_usage(body["input"]),
        }

    @staticmethod
    def _images_payload(scenario: Scenario, body: dict[str, Any]) -> dict[str, Any]:
        family = image_family(_image_model(body))
        n = body.get("n") or 1
        if family == _GPT_IMAGE:
            quality, size = body.get("quality"), body.get("size")
            answer = {
                "created": int(time.time()),
                "data": [{"b64_json": _FAKE_PNG_B64} for _ in range(n)],
                "background": "opaque",
                "output_format": "png",
                "quality": _AUTO_QUALITY if quality in (None, "auto") else quality,
                "size": _AUTO_SIZE if size in (None, "auto") else size,
                "usage": expected_image_usage(
                    body["prompt"],
                    n=n,
                    quality=quality,
                    size=size,
                    image_input_tokens=scenario.image_input_tokens,
                ),
            }
            if not scenario.image_usage:
                del answer["usage"]
            return answer
        images = []
        for _ in range(n):
            if body.get("response_format") == "b64_json":
                image = {"b64_json": _FAKE_PNG_B64}
            else:
                image = {
                    "url": f"https://images.fake.invalid/{_ID_PREFIX}"
                    f"{next(_ids):012x}.png"
                }
            if family == "dall-e-3":
                image["revised_prompt"] = f"A detailed image of: {body['prompt']}"
            images.append(image)
        return {"created": int(time.time()), "data": images}

    async def _serve_sse(
        self,
        name: str,
        scenario: Scenario,
        receive: Receive,
        send: Send,
        *,
        head: list[bytes],
        content: list[bytes],
        tail: list[bytes],
        error: Callable[[int], list[bytes]] | None = None,
        done: bool = True,
        on_finish: Callable[[], None] | None = None,
    ) -> None:
        """Send ``head``, then ``content`` events (subject to ``chunk_delay``,
        ``drop_after_chunks`` and ``error_after_chunks``), then ``tail`` and,
        when ``done``, ``data: [DONE]``.

        ``error(sent)`` gives the events that end a stream failing after
        ``sent`` content events (chat's ``data: {"error": ...}`` by default);
        ``on_finish`` runs once the stream is known to complete.
        """
        # uvicorn's send() silently discards writes after the client leaves,
        # so a concurrent receive() is the only way to notice the disconnect.
        watcher = asyncio.create_task(wait_disconnect(receive))
        split = scenario.split_utf8
        drop_at, error_at = scenario.drop_after_chunks, scenario.error_after_chunks
        fail = error or (
            lambda _sent: [_sse(scenario.stream_error or status_error(500))]
        )
        try:
            await send(
                {"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS}
            )
            for data in head:
                await write_event(send, data, split)
            for index, data in enumerate(content):
                if index == drop_at:
                    drop_connection(send)
                    return
                if index == error_at:
                    await self._send_last(send, fail(index), split)
                    return
                if scenario.chunk_delay:
                    await asyncio.wait((watcher,), timeout=scenario.chunk_delay)
                if watcher.done():
                    self._note_abort(name)
                    return
                await write_event(send, data, split)
            if drop_at is not None:
                drop_connection(send)
                return
            if watcher.done():
                self._note_abort(name)
                return
            if error_at is not None:
                await self._send_last(send, fail(len(content)), split)
                return
            if on_finish is not None:
                on_finish()
            await self._send_last(send, [*tail, _DONE_EVENT] if done else tail, split)
        except OSError:
            # Servers other than uvicorn may raise on writes to a closed socket.
            self._note_abort(name)
        finally:
            watcher.cancel()

    @classmethod
    async def _send_last(cls, send: Send, events: list[bytes], split: bool) -> None:
        """Send the closing ``events`` and end the body cleanly."""
        *rest, last = events or [b""]
        for data in rest:
            await write_event(send, data, split)
        if split:
            await write_event(send, last, split)
            last = b""
        # Unsplit, the last event and the end of the body share one write.
        await send({"type": "http.response.body", "body": last})

    def _note_abort(self, name: str) -> None:
        with self._lock:
            self._aborted_counts[name] += 1


def main(argv: list[str] | None = None) -> None:
    """Serve the default scenario forever for benchmarks and manual testing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    parser.add_argument("--reply", default=DEFAULT_REPLY)
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="also serve scenario NAME at /s/NAME/v1 with these Scenario knobs, "
        'e.g. slow={"chunk_delay": 0.1} (repeatable)',
    )
    args = parser.parse_args(argv)
    fake = FakeUpstream(port=args.port, host=args.host)
    fake.scenario(latency=args.latency, chunk_delay=args.chunk_delay, reply=args.reply)
    for spec in args.scenario:
        name, _, knobs = spec.partition("=")
        try:
            fake.scenario(name, **orjson.loads(knobs or "{}"))
        except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
            parser.error(f"--scenario {spec!r}: {exc}")
    with contextlib.suppress(KeyboardInterrupt):
        fake.serve_forever()


if __name__ == "__main__":
    main()
