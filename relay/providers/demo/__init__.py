"""
The `demo` provider: answers locally, in OpenAI's wire format, so a newcomer
can try the whole loop (key, hold, stream, usage, charge) with no upstream
account. It serves chat completions (text, tool calls, JSON output), legacy
completions, embeddings and image generation; the relay translates the
Responses API and Anthropic's Messages to chat completions for it.

Everything it answers is deterministic, and its usage is what a real
upstream would report for what it returned.

This module holds the adapter and the in-process transport that hands each
endpoint to its module (chat, completions, embeddings, images); the names
the rest of Switchboard uses are importable from here.
"""

from collections.abc import Callable

import httpx
import orjson

from relay import upstream
from relay.catalog import ChannelInfo
from relay.endpoints import Endpoint
from relay.providers.demo import chat, completions, embeddings, images
from relay.providers.demo.embeddings import is_embedding_model
from relay.providers.demo.errors import Refused
from relay.providers.demo.images import image_family
from relay.providers.openai import OpenAIAdapter

__all__ = [
    "DEMO_BASE_URL",
    "DemoAdapter",
    "DemoTransport",
    "image_family",
    "is_embedding_model",
]

DEMO_BASE_URL = "http://demo.switchboard.invalid/v1"

HANDLERS: dict[str, Callable[[dict], httpx.Response]] = {
    "/v1/chat/completions": chat.chat_completions,
    "/v1/completions": completions.completions,
    "/v1/embeddings": embeddings.embeddings,
    "/v1/images/generations": images.images_generations,
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
