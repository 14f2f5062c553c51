"""Any OpenAI-compatible API: OpenAI itself, DeepSeek, Groq, vLLM, Ollama..."""

import httpx
import orjson

from billing.pricing import TokenUsage
from relay import upstream
from relay.catalog import ChannelInfo
from relay.endpoints import Endpoint
from relay.providers.base import BaseAdapter
from relay.streaming import OpenAIStream, usage_from_openai


class OpenAIAdapter(BaseAdapter):
    """The relay's own wire format: requests and answers pass through as is."""

    endpoints = frozenset(
        {"chat.completions", "completions", "embeddings", "images.generations"}
    )

    def request(
        self,
        endpoint: Endpoint,
        channel: ChannelInfo,
        payload: dict,
        *,
        stream: bool,
        headers: dict | None = None,
    ) -> httpx.Request:
        headers = {"content-type": "application/json", "accept-encoding": "identity"}
        headers.update(self.auth_headers(channel))
        if stream:
            headers["accept"] = "text/event-stream"
        return httpx.Request(
            "POST",
            self.url(channel, endpoint, payload),
            headers=headers,
            content=orjson.dumps(payload),
        )

    def url(self, channel: ChannelInfo, endpoint: Endpoint, payload: dict) -> httpx.URL:
        return httpx.URL(f"{channel.base_url}{endpoint.path}")

    def auth_headers(self, channel: ChannelInfo) -> dict:
        if not channel.api_key:
            return {}
        return {"authorization": f"Bearer {channel.api_key}"}

    def response(
        self, endpoint: Endpoint, raw: bytes
    ) -> tuple[bytes, TokenUsage | None]:
        body = orjson.loads(raw)
        usage = body.get("usage") if isinstance(body, dict) else None
        return raw, usage_from_openai(usage) if usage else None

    def stream(self, endpoint: Endpoint, *, forward_usage: bool) -> OpenAIStream:
        return OpenAIStream(forward_usage=forward_usage)

    def transport(self) -> httpx.AsyncBaseTransport:
        return upstream.transport()
