"""The small interface every provider adapter implements."""

from typing import Protocol

import httpx
import orjson

from billing.pricing import TokenUsage
from relay.catalog import ChannelInfo
from relay.endpoints import Endpoint


class StreamTranslator(Protocol):
    usage: TokenUsage | None
    done: bool
    text: list[str]
    # The stream's terminating event, sent after the request is settled.
    closing: bytes
    # The event sent instead when the upstream breaks off the stream.
    broken: bytes

    def feed(self, data: bytes) -> bytes:
        """Take upstream bytes; return the client's SSE bytes."""

    def end(self) -> bytes:
        """The upstream body ended cleanly: return any last events, and set
        `done` if the stream is complete after all."""


class Adapter(Protocol):
    # Names of the endpoints (relay.endpoints) this provider serves.
    endpoints: frozenset[str]

    def request(
        self,
        endpoint: Endpoint,
        channel: ChannelInfo,
        payload: dict,
        *,
        stream: bool,
        headers: dict | None = None,
    ) -> httpx.Request:
        """Build the upstream request for a payload in the endpoint's format,
        with the client `headers` the endpoint forwards."""

    def response(
        self, endpoint: Endpoint, raw: bytes
    ) -> tuple[bytes, TokenUsage | None]:
        """Return the OpenAI-format body for the client and the usage."""

    def stream(self, endpoint: Endpoint, *, forward_usage: bool) -> StreamTranslator:
        """Return a translator for one streamed response."""

    def transport(self) -> httpx.AsyncBaseTransport:
        """Return the HTTP transport that reaches this provider."""

    def error_body(self, raw: bytes) -> dict:
        """Return an upstream error answer as OpenAI's {"error": {...}}."""

    def channel_fault(self, status: int, raw: bytes) -> bool:
        """Return whether an error answer blames the channel's key, not the
        request (for providers whose status code does not tell)."""


class BaseAdapter:
    """Defaults for providers whose errors are shaped {"error": {...}}."""

    def error_body(self, raw: bytes) -> dict:
        try:
            error = orjson.loads(raw).get("error")
        except (orjson.JSONDecodeError, AttributeError):
            error = None
        if isinstance(error, str):
            error = {"message": error}
        return {"error": error if isinstance(error, dict) else {}}

    def channel_fault(self, status: int, raw: bytes) -> bool:
        return False


class ChatAdapter(BaseAdapter):
    """
    Base of providers that serve only chat completions, through their own
    chat_request / chat_response / chat_stream translations.
    """

    endpoints = frozenset({"chat.completions"})

    def request(
        self,
        endpoint: Endpoint,
        channel: ChannelInfo,
        payload: dict,
        *,
        stream: bool,
        headers: dict | None = None,
    ) -> httpx.Request:
        return self.chat_request(channel, payload, stream=stream)

    def response(
        self, endpoint: Endpoint, raw: bytes
    ) -> tuple[bytes, TokenUsage | None]:
        return self.chat_response(raw)

    def stream(self, endpoint: Endpoint, *, forward_usage: bool) -> StreamTranslator:
        return self.chat_stream(forward_usage=forward_usage)
