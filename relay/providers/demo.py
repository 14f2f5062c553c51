"""
The `demo` provider: answers locally, in OpenAI's wire format, so a newcomer
can try the whole loop (key, hold, stream, usage, charge) with no upstream
account. Its text is deterministic; its usage figures are real token counts.
"""

import asyncio
import time
import uuid

import httpx
import orjson

from billing.pricing import TokenUsage
from relay import tokens, upstream
from relay.catalog import ChannelInfo
from relay.endpoints import Endpoint
from relay.providers.openai import OpenAIAdapter
from relay.streaming import openai_usage

DEMO_BASE_URL = "http://demo.switchboard.invalid/v1"


def _last_user_text(messages: list) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(
                    str(p.get("text", "")) for p in content if isinstance(p, dict)
                )
            return " ".join(str(content or "").split())
    return ""


def reply_for(payload: dict) -> tuple[list[str], str]:
    """Return the reply's pieces (one per token) and its finish reason."""
    asked = _last_user_text(payload.get("messages") or [])
    if len(asked) > 60:
        asked = asked[:57] + "..."
    text = (
        "Hello from Switchboard's demo channel! You said: "
        f'"{asked}". This answer was generated locally, and its tokens were '
        "metered and charged like a real model's."
    )
    encoding = tokens.encoding()
    ids = encoding.encode_ordinary(text)
    limit = payload.get("max_completion_tokens") or payload.get("max_tokens")
    finish = "stop"
    if isinstance(limit, int) and 0 < limit < len(ids):
        ids, finish = ids[:limit], "length"
    return [encoding.decode([i]) for i in ids], finish


def _usage(payload: dict, completion: int) -> dict:
    prompt = tokens.estimate_prompt(payload.get("messages") or [])
    return openai_usage(TokenUsage(prompt=prompt, completion=completion))


def _chunk(base: dict, delta: dict, finish: str | None = None) -> bytes:
    chunk = {
        **base,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


async def _stream(payload: dict, pieces: list[str], finish: str):
    base = {
        "id": f"chatcmpl-demo{uuid.uuid4().hex[:20]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": payload.get("model"),
    }
    yield _chunk(base, {"role": "assistant", "content": ""})
    for piece in pieces:
        # Yield to the event loop between pieces, as a network read would.
        await asyncio.sleep(0)
        yield _chunk(base, {"content": piece})
    yield _chunk(base, {}, finish)
    if (payload.get("stream_options") or {}).get("include_usage"):
        usage_chunk = {**base, "choices": [], "usage": _usage(payload, len(pieces))}
        yield b"data: " + orjson.dumps(usage_chunk) + b"\n\n"
    yield b"data: [DONE]\n\n"


class DemoTransport(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        payload = orjson.loads(await request.aread())
        pieces, finish = reply_for(payload)
        if payload.get("stream"):
            return httpx.Response(
                200,
                headers={"content-type": "text/event-stream"},
                content=_stream(payload, pieces, finish),
            )
        body = {
            "id": f"chatcmpl-demo{uuid.uuid4().hex[:20]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": payload.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(pieces)},
                    "finish_reason": finish,
                }
            ],
            "usage": _usage(payload, len(pieces)),
        }
        return httpx.Response(200, json=body)


class DemoAdapter(OpenAIAdapter):
    endpoints = frozenset({"chat.completions"})

    def url(self, channel: ChannelInfo, endpoint: Endpoint, payload: dict) -> httpx.URL:
        return httpx.URL(f"{DEMO_BASE_URL}{endpoint.path}")

    def transport(self) -> httpx.AsyncBaseTransport:
        return upstream.transport("demo", DemoTransport)
