"""
The `demo` provider: answers locally, in OpenAI's wire format, so a newcomer
can try the whole loop (key, hold, stream, usage, charge) with no upstream
account. It serves chat completions (text, tool calls, JSON output), legacy
completions, embeddings and image generation; the relay translates the
Responses API and Anthropic's Messages to chat completions for it.

Everything it answers is deterministic, and its usage is what a real
upstream would report for what it returned: tokens counted with the real
tokenizer (relay.tokens), image tokens by OpenAI's published figures.
"""

import asyncio
import base64
import hashlib
import math
import struct
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import orjson

from billing.pricing import TokenUsage
from relay import tokens, upstream
from relay.catalog import ChannelInfo
from relay.endpoints import Endpoint
from relay.formats.usage import openai_usage
from relay.providers.openai import OpenAIAdapter

DEMO_BASE_URL = "http://demo.switchboard.invalid/v1"
# The API's limits on choices per request.
MAX_CHOICES = 128
MAX_EMBEDDING_INPUTS = 2048
# What a user's text is shortened to when an answer quotes it.
QUOTE_CHARS = 60
COMPLETION_TEXT = (
    " - continued by Switchboard's demo channel, which writes this text "
    "locally and meters every token like a real model's completion."
)


class Refused(Exception):
    """A request a real upstream would refuse: answered 400 in OpenAI's shape."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param

    def response(self) -> httpx.Response:
        error = {
            "message": self.message,
            "type": "invalid_request_error",
            "param": self.param,
            "code": None,
        }
        return httpx.Response(400, json={"error": error})


# -- text, cut into tokens ---------------------------------------------------


@dataclass(frozen=True)
class Output:
    """One choice's output: text pieces (one per token, as they are streamed)
    or, with `tool`, the pieces of one call's arguments."""

    pieces: list[str]
    tokens: int
    finish: str
    tool: str = ""

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def _limit(payload: dict, *names: str) -> int | None:
    for name in names:
        value = payload.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def cut(text: str, limit: int | None) -> tuple[list[str], int, bool]:
    """Return `text` as pieces of whole characters, one per token where a
    character is not split across tokens, cut to `limit` tokens: the pieces,
    the tokens produced and whether it was cut."""
    encoding = tokens.encoding()
    ids = encoding.encode_ordinary(text)
    shortened = limit is not None and limit < len(ids)
    if shortened:
        ids = ids[:limit]
    pieces, pending = [], b""
    for raw in encoding.decode_tokens_bytes(ids):
        pending += raw
        try:
            pieces.append(pending.decode())
        except UnicodeDecodeError:
            continue  # a character spans tokens: send it whole with the next
        pending = b""
    return pieces, len(ids), shortened


def _text_output(text: str, payload: dict, limit: int | None) -> Output:
    stops = payload.get("stop")
    stops = [stops] if isinstance(stops, str) else stops
    if isinstance(stops, list):
        found = [text.find(s) for s in stops if isinstance(s, str) and s in text]
        if found:
            text = text[: min(found)]
    pieces, produced, shortened = cut(text, limit)
    return Output(pieces, produced, "length" if shortened else "stop")


def _choices(payload: dict) -> int:
    n = payload.get("n", 1)
    if n is None:
        return 1
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_CHOICES:
        raise Refused(f"'n' must be an integer from 1 to {MAX_CHOICES}.", "n")
    return n


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 3] + "..."


def _content_text(content) -> tuple[str, int]:
    """Return the text of a message's content and how many images it has."""
    if isinstance(content, list):
        parts = [p for p in content if isinstance(p, dict)]
        text = " ".join(str(p.get("text", "")) for p in parts if "text" in p)
        return text, sum(1 for p in parts if "text" not in p)
    return str(content or ""), 0


def is_embedding_model(model: str) -> bool:
    """Return whether the demo answers `model` on /embeddings (and only there)."""
    return "embed" in model


def _refuse_embedding_model(payload: dict) -> None:
    model = str(payload.get("model") or "")
    if is_embedding_model(model):
        raise Refused(
            f"The model `{model}` makes embeddings: use POST /v1/embeddings.",
            "model",
        )


# -- JSON Schema examples ----------------------------------------------------

_STRING_FORMATS = {
    "date": "2026-01-01",
    "date-time": "2026-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "email": "demo@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
# Deeper than any hand-written schema: stops a recursive $ref.
MAX_SCHEMA_DEPTH = 12


def schema_example(schema, *, name: str = "value", root=None, depth: int = 0):
    """
    Return a deterministic instance of a JSON Schema: required properties
    filled, strings with short text naming the property, numbers 1 (within
    minimum and maximum), booleans true, enums and consts their first value,
    arrays with one item (or minItems), the first alternative of
    anyOf/oneOf, local $refs followed.
    """
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > MAX_SCHEMA_DEPTH:
        return f"demo {name}"
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return schema_example(target, name=name, root=root, depth=depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key) or () if isinstance(o, dict)]
        options = [o for o in options if o.get("type") != "null"] or options
        if options:
            return schema_example(options[0], name=name, root=root, depth=depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
        kind = "array" if "items" in schema else kind
    if kind == "object":
        properties = schema.get("properties") or {}
        return {
            key: schema_example(
                properties.get(key), name=key, root=root, depth=depth + 1
            )
            for key in schema.get("required") or ()
            if isinstance(key, str)
        }
    if kind == "array":
        count = schema.get("minItems")
        count = count if isinstance(count, int) and count > 1 else 1
        item = schema_example(
            schema.get("items"), name=name, root=root, depth=depth + 1
        )
        return [item] * count
    if kind in ("integer", "number"):
        value = 1
        low, high = schema.get("minimum"), schema.get("maximum")
        if isinstance(low, int | float) and value < low:
            value = math.ceil(low) if kind == "integer" else low
        if isinstance(high, int | float) and value > high:
            value = math.floor(high) if kind == "integer" else high
        return value
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _STRING_FORMATS.get(schema.get("format"), f"demo {name}")


# -- chat completions --------------------------------------------------------


def _function_tools(payload: dict) -> list[dict]:
    return [
        tool["function"]
        for tool in payload.get("tools") or ()
        if isinstance(tool, dict)
        and tool.get("type") == "function"
        and isinstance(tool.get("function"), dict)
        and isinstance(tool["function"].get("name"), str)
    ]


def tool_to_call(payload: dict) -> dict | None:
    """Return the function tool the answer calls, or None for a text answer:
    the one tool_choice names, else the first, unless tool_choice is "none"
    or the conversation ends with a tool's result."""
    functions = _function_tools(payload)
    choice = payload.get("tool_choice")
    messages = payload.get("messages") or []
    last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    if not functions or choice == "none" or last.get("role") == "tool":
        return None
    allowed = None
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        allowed = [choice["function"].get("name")]
    elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        listed = (choice.get("allowed_tools") or {}).get("tools") or ()
        allowed = [(t.get("function") or {}).get("name") for t in listed]
    if allowed is None:
        return functions[0]
    for function in functions:
        if function["name"] in allowed:
            return function
    raise Refused(
        f"Invalid value for 'tool_choice': no function named {allowed[0]!r} is "
        "in 'tools'.",
        "tool_choice",
    )


def _tool_results(messages: list) -> list[tuple[str, str]]:
    """Return (tool name, result) for each tool result ending the conversation."""
    names = {
        call.get("id"): (call.get("function") or {}).get("name") or "tool"
        for message in messages
        if isinstance(message, dict)
        for call in message.get("tool_calls") or ()
        if isinstance(call, dict)
    }
    results = []
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "tool":
            break
        text, _ = _content_text(message.get("content"))
        results.append((names.get(message.get("tool_call_id"), "tool"), text))
    return results[::-1]


def _last_user(messages: list) -> tuple[str, int]:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_text(message.get("content"))
    return "", 0


def _greeting(messages: list) -> str:
    said, images = _last_user(messages)
    seen = ""
    if images:
        seen = f" and {images} image{'s' if images > 1 else ''}"
    return (
        f'Hello from Switchboard\'s demo channel! You said: "{_quote(said)}"{seen}. '
        "This answer was generated locally, and its tokens were metered and "
        "charged like a real model's."
    )


def chat_text(payload: dict) -> str:
    """Return the text the demo answers a chat completion with."""
    messages = payload.get("messages") or []
    results = _tool_results(messages)
    if results:
        text = "; ".join(f'`{name}` returned "{_quote(r)}"' for name, r in results)
        return (
            f"Switchboard's demo channel got the tool result: {text}. This "
            "answer was generated locally and metered like a real model's."
        )
    greeting = _greeting(messages)
    response_format = payload.get("response_format") or {}
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {}
        return orjson.dumps(schema_example(schema)).decode()
    if kind == "json_object":
        return orjson.dumps({"message": greeting}).decode()
    return greeting


def chat_output(payload: dict) -> Output:
    """Return one choice of the demo's answer to a chat completion."""
    limit = _limit(payload, "max_completion_tokens", "max_tokens")
    function = tool_to_call(payload)
    if function is None:
        return _text_output(chat_text(payload), payload, limit)
    name = function["name"]
    arguments = orjson.dumps(schema_example(function.get("parameters") or {}))
    named = tokens.count(name)
    budget = None if limit is None else max(limit - named, 0)
    pieces, produced, shortened = cut(arguments.decode(), budget)
    finish = "length" if shortened else "tool_calls"
    return Output(pieces, named + produced, finish, tool=name)


def chat_prompt_tokens(payload: dict) -> int:
    """Count the prompt: messages, tools, the JSON schema asked for and the
    tool calls already made."""
    messages = payload.get("messages") or []
    extra = [payload[k] for k in ("tools", "response_format") if payload.get(k)]
    extra += [
        message["tool_calls"]
        for message in messages
        if isinstance(message, dict) and message.get("tool_calls")
    ]
    return tokens.estimate_prompt(
        messages, orjson.dumps(extra).decode() if extra else ""
    )


def _call_id() -> str:
    return f"call_demo{uuid.uuid4().hex[:20]}"


def _chat_message(output: Output) -> dict:
    message = {"role": "assistant", "content": None, "refusal": None}
    if output.tool:
        function = {"name": output.tool, "arguments": output.text}
        message["tool_calls"] = [
            {"id": _call_id(), "type": "function", "function": function}
        ]
    else:
        message["content"] = output.text
    return message


def _chat_deltas(output: Output) -> list[dict]:
    """Return one choice's stream deltas, as OpenAI sends them: the call's
    id and name first, then its arguments in fragments."""
    if output.tool:
        call = {
            "index": 0,
            "id": _call_id(),
            "type": "function",
            "function": {"name": output.tool, "arguments": ""},
        }
        first = {"role": "assistant", "content": None, "tool_calls": [call]}
        return [first] + [
            {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
            for piece in output.pieces
        ]
    first = {"role": "assistant", "content": ""}
    return [first] + [{"content": piece} for piece in output.pieces]


def chat_completions(payload: dict) -> httpx.Response:
    _refuse_embedding_model(payload)
    outputs = [chat_output(payload) for _ in range(_choices(payload))]
    usage = openai_usage(
        TokenUsage(
            prompt=chat_prompt_tokens(payload),
            completion=sum(output.tokens for output in outputs),
        )
    )
    base = {
        "id": f"chatcmpl-demo{uuid.uuid4().hex[:20]}",
        "created": int(time.time()),
        "model": payload.get("model"),
        "system_fingerprint": "fp_demo",
    }
    if not payload.get("stream"):
        choices = [
            {
                "index": index,
                "message": _chat_message(output),
                "logprobs": None,
                "finish_reason": output.finish,
            }
            for index, output in enumerate(outputs)
        ]
        body = {**base, "object": "chat.completion", "choices": choices}
        return httpx.Response(200, json={**body, "usage": usage})
    base["object"] = "chat.completion.chunk"
    chunks = []
    for index, output in enumerate(outputs):
        for delta in _chat_deltas(output):
            choice = {"index": index, "delta": delta, "finish_reason": None}
            chunks.append({**base, "choices": [choice]})
        choice = {"index": index, "delta": {}, "finish_reason": output.finish}
        chunks.append({**base, "choices": [choice]})
    return _stream(payload, base, chunks, usage)


# -- legacy completions ------------------------------------------------------


def _token_array(value) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(i, int) and not isinstance(i, bool) for i in value)
    )


def _inputs(value, param: str) -> list[str | list[int]]:
    """Split a `prompt` or `input` into its items: strings or token arrays."""
    if isinstance(value, str) or _token_array(value):
        return [value]
    if (
        isinstance(value, list)
        and value
        and all(isinstance(item, str) or _token_array(item) for item in value)
    ):
        return value
    raise Refused(
        f"'{param}' must be a string, an array of strings, an array of tokens "
        "or an array of token arrays.",
        param,
    )


def _item_tokens(item: str | list[int]) -> int:
    return tokens.count(item) if isinstance(item, str) else len(item)


def _item_text(item: str | list[int], param: str) -> str:
    if isinstance(item, str):
        return item
    try:
        return tokens.encoding().decode(item)
    except (KeyError, ValueError, OverflowError):
        raise Refused(f"'{param}' holds a token id out of range.", param) from None


def completions(payload: dict) -> httpx.Response:
    _refuse_embedding_model(payload)
    prompts = _inputs(payload.get("prompt"), "prompt")
    n = _choices(payload)
    best_of = payload.get("best_of") or n
    if not isinstance(best_of, int) or best_of < n:
        raise Refused("'best_of' must be an integer at least 'n'.", "best_of")
    if best_of > n and payload.get("stream"):
        raise Refused("'best_of' cannot be used with 'stream'.", "best_of")
    limit = _limit(payload, "max_tokens")
    output = _text_output(COMPLETION_TEXT, payload, 16 if limit is None else limit)
    # With echo, each choice starts with its prompt (not billed as output).
    echoes = [
        _item_text(prompt, "prompt") if payload.get("echo") is True else ""
        for prompt in prompts
    ]
    # Every best_of candidate is generated, and billed, as the API does.
    usage = openai_usage(
        TokenUsage(
            prompt=sum(_item_tokens(prompt) for prompt in prompts),
            completion=output.tokens * best_of * len(prompts),
        )
    )
    base = {
        "id": f"cmpl-demo{uuid.uuid4().hex[:20]}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": payload.get("model"),
    }

    def choice(index: int, text: str, finish: str | None) -> dict:
        return {"text": text, "index": index, "logprobs": None, "finish_reason": finish}

    # Prompt by prompt, n choices each, indexed in that order.
    indexed = [(i * n + c, echo) for i, echo in enumerate(echoes) for c in range(n)]
    if not payload.get("stream"):
        choices = [choice(i, echo + output.text, output.finish) for i, echo in indexed]
        return httpx.Response(200, json={**base, "choices": choices, "usage": usage})
    chunks = []
    for index, echo in indexed:
        for piece in [echo] * bool(echo) + output.pieces:
            chunks.append({**base, "choices": [choice(index, piece, None)]})
        chunks.append({**base, "choices": [choice(index, "", output.finish)]})
    return _stream(payload, base, chunks, usage)


# -- embeddings --------------------------------------------------------------

EMBEDDING_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
DEFAULT_EMBEDDING_DIMENSIONS = 1536


def embedding(model: str, text: str, dimensions: int | None = None) -> list[float]:
    """
    Return the demo's unit vector for `text`: the model's native dimensions
    drawn from SHAKE-256 of the model name and the text, rounded to float32
    (so the base64 form decodes to exactly these values). Fewer `dimensions`
    give the renormalised prefix, as OpenAI's shortened embeddings are.
    """
    native = EMBEDDING_DIMENSIONS.get(model, DEFAULT_EMBEDDING_DIMENSIONS)
    seed = model.encode() + b"\0" + text.encode()
    raw = hashlib.shake_256(seed).digest(2 * native)
    values = [v - 32767.5 for v in struct.unpack(f"<{native}H", raw)]
    values = values[: dimensions or native]
    norm = math.sqrt(math.fsum(v * v for v in values))
    count = len(values)
    packed = struct.pack(f"<{count}f", *(v / norm for v in values))
    return list(struct.unpack(f"<{count}f", packed))


def _dimensions(payload: dict, model: str) -> int | None:
    value = payload.get("dimensions")
    if value is None:
        return None
    if "text-embedding-3" not in model:
        raise Refused(
            "This model does not support specifying dimensions.", "dimensions"
        )
    native = EMBEDDING_DIMENSIONS.get(model, DEFAULT_EMBEDDING_DIMENSIONS)
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not 1 <= value <= native
    ):
        raise Refused(
            f"'dimensions' must be an integer from 1 to {native} for {model}.",
            "dimensions",
        )
    return value


def embeddings(payload: dict) -> httpx.Response:
    model = str(payload.get("model") or "")
    if not is_embedding_model(model):
        raise Refused(f"The model `{model}` does not make embeddings.", "model")
    items = _inputs(payload.get("input"), "input")
    if len(items) > MAX_EMBEDDING_INPUTS:
        raise Refused(
            f"'input' may hold at most {MAX_EMBEDDING_INPUTS} items.", "input"
        )
    if any(item == "" for item in items):
        raise Refused("'input' cannot contain an empty string.", "input")
    encoding = payload.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise Refused(
            "'encoding_format' must be 'float' or 'base64'.", "encoding_format"
        )
    dimensions = _dimensions(payload, model)
    data = []
    for index, item in enumerate(items):
        vector = embedding(model, _item_text(item, "input"), dimensions)
        if encoding == "base64":
            packed = struct.pack(f"<{len(vector)}f", *vector)
            vector = base64.b64encode(packed).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": vector})
    used = sum(_item_tokens(item) for item in items)
    body = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": used, "total_tokens": used},
    }
    return httpx.Response(200, json=body)


# -- image generation --------------------------------------------------------


@dataclass(frozen=True)
class ImageFamily:
    qualities: tuple[str, ...]
    sizes: tuple[str, ...]
    max_prompt: int
    max_images: int
    # Answer formats, the default first: GPT Image answers b64_json, DALL·E
    # a URL (a data: URL here, as nothing is hosted).
    formats: tuple[str, ...]


URL_FIRST = ("url", "b64_json")
# Each family's first quality and size are what a request without them gets.
IMAGE_FAMILIES = {
    "dall-e-2": ImageFamily(
        ("standard",), ("1024x1024", "256x256", "512x512"), 1000, 10, URL_FIRST
    ),
    "dall-e-3": ImageFamily(
        ("standard", "hd"), ("1024x1024", "1792x1024", "1024x1792"), 4000, 1, URL_FIRST
    ),
    "gpt-image": ImageFamily(
        ("auto", "low", "medium", "high"),
        ("auto", "1024x1024", "1536x1024", "1024x1536"),
        32000,
        10,
        ("b64_json", "url"),
    ),
}
# OpenAI's published output tokens per GPT Image image, by quality and size.
GPT_IMAGE_OUTPUT_TOKENS = {
    ("low", "1024x1024"): 272,
    ("low", "1024x1536"): 408,
    ("low", "1536x1024"): 400,
    ("medium", "1024x1024"): 1056,
    ("medium", "1024x1536"): 1584,
    ("medium", "1536x1024"): 1568,
    ("high", "1024x1024"): 4160,
    ("high", "1024x1536"): 6240,
    ("high", "1536x1024"): 6208,
}
# What "auto" (and a request without quality or size) is made as.
AUTO_QUALITY, AUTO_SIZE = "medium", "1024x1024"
# Images are drawn this many times smaller than the size asked for.
IMAGE_SCALE = 16


def image_family(model: str) -> str:
    for family in ("dall-e-2", "dall-e-3"):
        if family in model:
            return family
    return "gpt-image"


def png(width: int, height: int, seed: bytes) -> bytes:
    """Return a PNG of a diagonal gradient between two colours read from the
    SHA-256 of `seed`."""
    digest = hashlib.sha256(seed).digest()
    start, end = digest[:3], digest[3:6]
    span = max(width + height - 2, 1)
    ramp = [
        bytes(round(a + (b - a) * step / span) for a, b in zip(start, end, strict=True))
        for step in range(span + 1)
    ]
    rows = b"".join(
        b"\0" + b"".join(ramp[x + y] for x in range(width)) for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _image_option(payload: dict, name: str, offered: tuple[str, ...]) -> str:
    value = payload.get(name)
    if value is None:
        return offered[0]
    if value not in offered:
        raise Refused(
            f"Invalid value for '{name}': {value!r}. Supported values are: "
            f"{', '.join(repr(o) for o in offered)}.",
            name,
        )
    return value


def images_generations(payload: dict) -> httpx.Response:
    model = str(payload.get("model") or "dall-e-2")
    name = image_family(model)
    family = IMAGE_FAMILIES[name]
    prompt = payload.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise Refused("'prompt' must be a non-empty string.", "prompt")
    if len(prompt) > family.max_prompt:
        raise Refused(
            f"'prompt' is longer than the {family.max_prompt} characters {model} "
            "accepts.",
            "prompt",
        )
    n = payload.get("n") or 1
    if not isinstance(n, int) or not 1 <= n <= family.max_images:
        raise Refused(f"'n' must be from 1 to {family.max_images} for {model}.", "n")
    quality = _image_option(payload, "quality", family.qualities)
    size = _image_option(payload, "size", family.sizes)
    answer = _image_option(payload, "response_format", family.formats)
    if name == "gpt-image":
        quality = AUTO_QUALITY if quality == "auto" else quality
        size = AUTO_SIZE if size == "auto" else size
    width, height = (int(side) // IMAGE_SCALE for side in size.split("x"))
    data = []
    for index in range(n):
        image = png(width, height, f"{model}\0{prompt}\0{index}".encode())
        encoded = base64.b64encode(image).decode("ascii")
        item = (
            {"url": f"data:image/png;base64,{encoded}"}
            if answer == "url"
            else {"b64_json": encoded}
        )
        if name == "dall-e-3":
            item["revised_prompt"] = prompt
        data.append(item)
    body = {"created": int(time.time()), "data": data}
    if name == "gpt-image":
        text = tokens.count(prompt)
        output = n * GPT_IMAGE_OUTPUT_TOKENS[(quality, size)]
        body.update(
            background="opaque",
            output_format="png",
            quality=quality,
            size=size,
            usage={
                "input_tokens": text,
                "input_tokens_details": {"text_tokens": text, "image_tokens": 0},
                "output_tokens": output,
                "output_tokens_details": {"text_tokens": 0, "image_tokens": output},
                "total_tokens": text + output,
            },
        )
    # DALL·E answers carry no usage: the relay bills them per image.
    return httpx.Response(200, json=body)


# -- the transport -----------------------------------------------------------


def _stream(payload: dict, base: dict, chunks: list[dict], usage: dict):
    """Return an SSE response of `chunks`, then the usage chunk when the
    request asked for it, then [DONE]."""

    async def events():
        for chunk in chunks:
            # Yield to the event loop between events, as a network read would.
            await asyncio.sleep(0)
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
        if (payload.get("stream_options") or {}).get("include_usage"):
            chunk = {**base, "choices": [], "usage": usage}
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
        yield b"data: [DONE]\n\n"

    return httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=events()
    )


HANDLERS: dict[str, Callable[[dict], httpx.Response]] = {
    "/v1/chat/completions": chat_completions,
    "/v1/completions": completions,
    "/v1/embeddings": embeddings,
    "/v1/images/generations": images_generations,
}


class DemoTransport(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        handler = HANDLERS.get(request.url.path)
        if handler is None:
            error = {
                "message": f"Unknown endpoint {request.url.path}.",
                "type": "invalid_request_error",
                "param": None,
                "code": "unknown_url",
            }
            return httpx.Response(404, json={"error": error})
        try:
            payload = orjson.loads(await request.aread())
            if not isinstance(payload, dict):
                raise Refused("The request body must be a JSON object.")
            return handler(payload)
        except orjson.JSONDecodeError:
            return Refused("The request body is not valid JSON.").response()
        except Refused as refusal:
            return refusal.response()


class DemoAdapter(OpenAIAdapter):
    endpoints = frozenset(
        {"chat.completions", "completions", "embeddings", "images.generations"}
    )

    def url(self, channel: ChannelInfo, endpoint: Endpoint, payload: dict) -> httpx.URL:
        return httpx.URL(f"{DEMO_BASE_URL}{endpoint.path}")

    def transport(self) -> httpx.AsyncBaseTransport:
        return upstream.transport("demo", DemoTransport)
