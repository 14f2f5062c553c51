"""The small interface every provider adapter implements."""

from typing import Protocol

import httpx

from billing.pricing import TokenUsage
from relay.catalog import ChannelInfo
from relay.endpoints import Endpoint


class StreamTranslator(Protocol):
    usage: TokenUsage | None
    done: bool
    text: list[str]
    # The stream's terminating event, sent after the request is settled.
    closing: bytes

    def feed(self, data: bytes) -> bytes:
        """Take upstream bytes; return OpenAI-format SSE bytes for the client."""


class Adapter(Protocol):
    # Names of the endpoints (relay.endpoints) this provider serves.
    endpoints: frozenset[str]

    def request(
        self, endpoint: Endpoint, channel: ChannelInfo, payload: dict, *, stream: bool
    ) -> httpx.Request:
        """Build the upstream request for an OpenAI-format payload."""

    def response(
        self, endpoint: Endpoint, raw: bytes
    ) -> tuple[bytes, TokenUsage | None]:
        """Return the OpenAI-format body for the client and the usage."""

    def stream(self, endpoint: Endpoint, *, forward_usage: bool) -> StreamTranslator:
        """Return a translator for one streamed response."""

    def transport(self) -> httpx.AsyncBaseTransport:
        """Return the HTTP transport that reaches this provider."""


class ChatAdapter:
    """
    Base of providers that serve only chat completions, through their own
    chat_request / chat_response / chat_stream translations.
    """

    endpoints = frozenset({"chat.completions"})

    def request(
        self, endpoint: Endpoint, channel: ChannelInfo, payload: dict, *, stream: bool
    ) -> httpx.Request:
        return self.chat_request(channel, payload, stream=stream)

    def response(
        self, endpoint: Endpoint, raw: bytes
    ) -> tuple[bytes, TokenUsage | None]:
        return self.chat_response(raw)

    def stream(self, endpoint: Endpoint, *, forward_usage: bool) -> StreamTranslator:
        return self.chat_stream(forward_usage=forward_usage)
