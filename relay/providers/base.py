"""The small interface every provider adapter implements."""

from dataclasses import dataclass
from typing import Protocol

import httpx
import orjson

from billing.pricing import TokenUsage
from relay.catalog import ChannelInfo
from relay.endpoints import Endpoint
from relay.formats.usage import Bill


@dataclass(frozen=True, slots=True)
class ModelNames:
    """The model a client asked for, and the channel's name for it."""

    public: str
    upstream: str

    @property
    def renamed(self) -> bool:
        """Whether answers passed through must have their model renamed:
        clients are answered with the name they asked for, never the
        channel's mapping (an Azure deployment, a vendor's alias)."""
        return self.public != self.upstream


class StreamTranslator(Protocol):
    usage: TokenUsage | None
    # The input the upstream reported before the stream ended (Anthropic's
    # message_start): a cut stream is billed for it, its output estimated.
    prompt_usage: TokenUsage | None
    done: bool
    text: list[str]
    # The event sent instead when the upstream breaks off the stream.
    broken: bytes
    # The upstream's message when it ended the stream with an error event,
    # which has already been passed on: nothing more is sent after it.
    error: str
    # The Responses API id of the answer, once known ("" otherwise).
    response_id: str

    def feed(self, data: bytes) -> bytes:
        """Take upstream bytes; return the client's SSE bytes."""

    def end(self) -> bytes:
        """The upstream body ended cleanly: return any last events, and set
        `done` if the stream is complete after all."""

    def close(self, usage: TokenUsage, bill: Bill | None = None) -> bytes:
        """Return the stream's terminating event, sent once the request is
        settled for `usage` (shown in it where the format does), and the
        final usage with what `bill` says (relay.formats.usage.bill_fields)."""


class Adapter(Protocol):
    # Names of the endpoints (relay.endpoints) this provider serves natively.
    endpoints: frozenset[str]

    def serves(self, endpoint: Endpoint, channel: ChannelInfo) -> bool:
        """Return whether `channel` serves `endpoint` in its own format."""

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
        self, endpoint: Endpoint, raw: bytes, model: ModelNames | None = None
    ) -> tuple[bytes, TokenUsage | None]:
        """Return the endpoint-format body for the client, answering with
        `model.public`, and the usage."""

    def stream(
        self,
        endpoint: Endpoint,
        *,
        forward_usage: bool,
        model: ModelNames | None = None,
    ) -> StreamTranslator:
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

    endpoints: frozenset[str] = frozenset()

    def serves(self, endpoint: Endpoint, channel: ChannelInfo) -> bool:
        return endpoint.name in self.endpoints

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
        self, endpoint: Endpoint, raw: bytes, model: ModelNames | None = None
    ) -> tuple[bytes, TokenUsage | None]:
        return self.chat_response(raw, model=model and model.public)

    def stream(
        self,
        endpoint: Endpoint,
        *,
        forward_usage: bool,
        model: ModelNames | None = None,
    ) -> StreamTranslator:
        return self.chat_stream(
            forward_usage=forward_usage, model=model and model.public
        )
