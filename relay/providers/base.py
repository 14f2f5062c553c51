"""The small interface every provider adapter implements."""

from typing import Protocol

import httpx

from billing.pricing import TokenUsage
from relay.catalog import ChannelInfo


class StreamTranslator(Protocol):
    usage: TokenUsage | None
    done: bool
    text: list[str]
    # The stream's terminating event, sent after the request is settled.
    closing: bytes

    def feed(self, data: bytes) -> bytes:
        """Take upstream bytes; return OpenAI-format SSE bytes for the client."""


class Adapter(Protocol):
    def chat_request(
        self, channel: ChannelInfo, payload: dict, *, stream: bool
    ) -> httpx.Request:
        """Build the upstream request for an OpenAI-format chat payload."""

    def chat_response(self, raw: bytes) -> tuple[bytes, TokenUsage | None]:
        """Return the OpenAI-format body for the client and the usage."""

    def chat_stream(self, *, forward_usage: bool) -> StreamTranslator:
        """Return a translator for one streamed chat response."""

    def transport(self) -> httpx.AsyncBaseTransport:
        """Return the HTTP transport that reaches this provider."""
