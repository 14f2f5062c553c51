"""Any OpenAI-compatible API: OpenAI itself, DeepSeek, Groq, vLLM, Ollama..."""

import httpx
import orjson

from billing.pricing import TokenUsage
from relay import upstream
from relay.catalog import ChannelInfo
from relay.streaming import OpenAIStream, usage_from_openai


class OpenAIAdapter:
    def chat_request(
        self, channel: ChannelInfo, payload: dict, *, stream: bool
    ) -> httpx.Request:
        headers = {"content-type": "application/json", "accept-encoding": "identity"}
        if channel.api_key:
            headers["authorization"] = f"Bearer {channel.api_key}"
        if stream:
            headers["accept"] = "text/event-stream"
        return httpx.Request(
            "POST",
            f"{self.base_url(channel)}/chat/completions",
            headers=headers,
            content=orjson.dumps(payload),
        )

    def base_url(self, channel: ChannelInfo) -> str:
        return channel.base_url

    def chat_response(self, raw: bytes) -> tuple[bytes, TokenUsage | None]:
        body = orjson.loads(raw)
        usage = body.get("usage") if isinstance(body, dict) else None
        return raw, usage_from_openai(usage) if usage else None

    def chat_stream(self, *, forward_usage: bool) -> OpenAIStream:
        return OpenAIStream(forward_usage=forward_usage)

    def transport(self) -> httpx.AsyncBaseTransport:
        return upstream.transport()
