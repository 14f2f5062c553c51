"""Any OpenAI-compatible API: OpenAI itself, DeepSeek, Groq, vLLM, Ollama..."""

import httpx
import orjson

from billing.pricing import TokenUsage
from relay import upstream
from relay.catalog import ChannelInfo
from relay.endpoints import Endpoint
from relay.formats import responses
from relay.formats.usage import usage_from_openai
from relay.providers.base import BaseAdapter, ModelNames
from relay.streaming import OpenAIStream


class OpenAIAdapter(BaseAdapter):
    """The relay's own wire format: requests and answers pass through as is."""

    endpoints = frozenset(
        {
            "chat.completions",
            "completions",
            "embeddings",
            "images.generations",
            "responses",
        }
    )

    def serves(self, endpoint: Endpoint, channel: ChannelInfo) -> bool:
        if endpoint.name == "responses" and not channel.responses_api:
            return False  # a chat-only vendor: translated to chat completions
        return endpoint.name in self.endpoints

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

    def resource_request(
        self,
        channel: ChannelInfo,
        method: str,
        path: str,
        params: list[tuple[str, str]],
    ) -> httpx.Request:
        """Build a request for a stored resource, e.g. GET /responses/{id}."""
        headers = {"accept-encoding": "identity", **self.auth_headers(channel)}
        return httpx.Request(
            method, self.resource_url(channel, path, params), headers=headers
        )

    def url(self, channel: ChannelInfo, endpoint: Endpoint, payload: dict) -> httpx.URL:
        return upstream.url(f"{channel.base_url}{endpoint.path}")

    def resource_url(
        self, channel: ChannelInfo, path: str, params: list[tuple[str, str]]
    ) -> httpx.URL:
        return httpx.URL(f"{channel.base_url}{path}", params=params)

    def auth_headers(self, channel: ChannelInfo) -> dict:
        if not channel.api_key:
            return {}
        return {"authorization": f"Bearer {channel.api_key}"}

    def response(
        self, endpoint: Endpoint, raw: bytes, model: ModelNames | None = None
    ) -> tuple[bytes, TokenUsage | None]:
        rename = (model.upstream, model.public) if model and model.renamed else None
        if endpoint.name == "responses":
            body, usage, _ = responses.response_from_upstream(raw, rename=rename)
            return body, usage
        body = orjson.loads(raw)
        usage = body.get("usage") if isinstance(body, dict) else None
        if rename and isinstance(body, dict) and "model" in body:
            raw = orjson.dumps({**body, "model": model.public})
        return raw, usage_from_openai(usage) if usage else None

    def stream(
        self,
        endpoint: Endpoint,
        *,
        forward_usage: bool,
        model: ModelNames | None = None,
    ):
        renamed = model is not None and model.renamed
        if endpoint.name == "responses":
            return responses.ResponsesPassthrough(
                rename=(model.upstream, model.public) if renamed else None
            )
        return OpenAIStream(
            forward_usage=forward_usage, model=model.public if renamed else None
        )

    def transport(self) -> httpx.AsyncBaseTransport:
        return upstream.transport()
