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
        headers.update(self.auth_headers(channel))
        if stream:
            headers["accept"] = "text/event-stream"
        return httpx.Request(
            "POST",
            self.chat_url(channel, payload),
            headers=headers,
            content=orjson.dumps(payload),
        )

    def chat_url(self, channel: ChannelInfo, payload: dict) -> httpx.URL:
        return httpx.URL(f"{channel.base_url}/chat/completions")

    def auth_headers(self, channel: ChannelInfo) -> dict:
        if not channel.api_key:
            return {}
        return {"authorization": f"Bearer {channel.api_key}"}

    def chat_response(self, raw: bytes) -> tuple[bytes, TokenUsage | None]:
        body = orjson.loads(raw)
        usage = body.get("usage") if isinstance(body, dict) else None
        return raw, usage_from_openai(usage) if usage else None

    def chat_stream(self, *, forward_usage: bool) -> OpenAIStream:
        return OpenAIStream(forward_usage=forward_usage)

    def transport(self) -> httpx.AsyncBaseTransport:
        return upstream.transport()
