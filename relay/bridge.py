"""
How one request reaches one channel: in the endpoint's own format when the
channel speaks it, or as a chat completion when it does not.

Chat completions is what every provider adapter speaks, so an inbound format
with a translation to it (relay.formats) reaches every channel: a Responses
API request for a Claude model becomes a chat completion, which the
Anthropic adapter turns into a Messages request; the answer comes back the
same way. The relay core sees one Route per attempt and never asks which.
"""

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import httpx
import orjson

from billing.pricing import TokenUsage
from relay import endpoints
from relay.catalog import ChannelInfo, ModelInfo
from relay.endpoints import Endpoint
from relay.formats import messages, responses
from relay.formats.usage import Bill
from relay.providers import adapter_for
from relay.providers.base import Adapter, ModelNames, StreamTranslator
from relay.streaming import DONE, SSEBuffer, error_message, event_data


def _capped(chat: dict, model: ModelInfo) -> dict:
    """
    Keep the output limit within the model's: clients written for another
    provider ask for what its models allow (Claude Code asks 32,000), which
    a model with a smaller limit refuses. The hold is sized by the same cap.
    """
    for name in ("max_completion_tokens", "max_tokens"):
        limit = chat.get(name)
        if isinstance(limit, int) and limit > model.max_output_tokens > 0:
            chat[name] = model.max_output_tokens
    return chat


@dataclass(frozen=True, slots=True)
class Bridge:
    """
    One wire format as chat completions: `translations` is its package in
    relay.formats (to_chat, from_chat and StreamFromChat, called alike in
    every one), `id_prefix` starts the ids of its answers.
    """

    translations: ModuleType
    id_prefix: str

    def answer_id(self, request_id: str) -> str:
        """Return the id of a translated answer: its request id, re-prefixed,
        so the usage record and the answer name each other."""
        return self.id_prefix + request_id.removeprefix("req_")

    def to_chat(self, payload: dict, model: ModelInfo) -> dict:
        chat = self.translations.to_chat(payload, reasoning=model.reasoning)
        return _capped(chat, model)

    def from_chat(
        self,
        completion: dict,
        usage: TokenUsage | None,
        *,
        payload: dict,
        model: str,
        request_id: str,
    ) -> dict:
        return self.translations.from_chat(
            completion,
            usage,
            request=payload,
            answer_id=self.answer_id(request_id),
            model=model,
        )

    def stream(self, *, payload: dict, model: str, request_id: str):
        return self.translations.StreamFromChat(
            request=payload, answer_id=self.answer_id(request_id), model=model
        )


BRIDGES = {
    "responses": Bridge(responses, id_prefix="resp_"),
    "messages": Bridge(messages, id_prefix="msg_"),
}


@dataclass(frozen=True, slots=True)
class Request:
    """What the relay knows of the client's request, for the translations."""

    request_id: str
    payload: dict
    model: ModelInfo
    # The payload as a chat completion, for bridged routes (None otherwise).
    chat_payload: dict | None
    headers: dict


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint on one kind of channel: native, or bridged over chat."""

    adapter: Adapter
    endpoint: Endpoint
    bridged: bool

    def request(
        self, channel: ChannelInfo, request: Request, *, stream: bool
    ) -> httpx.Request:
        model = channel.upstream_model(request.model.name)
        if self.bridged:
            payload = {**request.chat_payload, "model": model}
            return self.adapter.request(
                endpoints.CHAT_COMPLETIONS, channel, payload, stream=stream
            )
        return self.adapter.request(
            self.endpoint,
            channel,
            {**request.payload, "model": model},
            stream=stream,
            headers=request.headers,
        )

    def answer(
        self, raw: bytes, request: Request, names: ModelNames, prompt: Callable
    ) -> tuple[bytes, TokenUsage, bool]:
        """
        Return the client's body for a whole upstream answer, what it used
        and whether that is an estimate (the upstream reported no usage:
        `prompt()` counts the prompt, the answer's text the output).
        """
        if not self.bridged:
            body, reported = self.adapter.response(self.endpoint, raw, names)
            usage, estimated = self.endpoint.answer_usage(
                request.payload, request.model, prompt, body, reported
            )
            return body, usage, estimated
        chat, reported = self.adapter.response(endpoints.CHAT_COMPLETIONS, raw, names)
        usage, estimated = endpoints.CHAT_COMPLETIONS.answer_usage(
            request.chat_payload, request.model, prompt, chat, reported
        )
        body = BRIDGES[self.endpoint.name].from_chat(
            orjson.loads(chat),
            usage,
            payload=request.payload,
            model=names.public,
            request_id=request.request_id,
        )
        return orjson.dumps(body), usage, estimated

    def stream(
        self, request: Request, names: ModelNames, *, forward_usage: bool
    ) -> StreamTranslator:
        if not self.bridged:
            return self.adapter.stream(
                self.endpoint, forward_usage=forward_usage, model=names
            )
        chat = self.adapter.stream(
            endpoints.CHAT_COMPLETIONS, forward_usage=False, model=names
        )
        bridge = BRIDGES[self.endpoint.name]
        outer = bridge.stream(
            payload=request.payload,
            model=names.public,
            request_id=request.request_id,
        )
        # Only a Responses API answer's id is recorded (previous_response_id).
        response_id = (
            bridge.answer_id(request.request_id)
            if self.endpoint.name == "responses"
            else ""
        )
        return BridgedStream(chat, outer, response_id=response_id)


# Routes by what decides them, found once rather than on every request.
_routes: dict[tuple[str, str, bool], Route | None] = {}


def route(endpoint: Endpoint, channel: ChannelInfo) -> Route | None:
    """Return how `endpoint` reaches `channel`, or None if it cannot."""
    key = (endpoint.name, channel.kind, channel.responses_api)
    try:
        return _routes[key]
    except KeyError:
        found = _routes[key] = _find_route(endpoint, channel)
        return found


def _find_route(endpoint: Endpoint, channel: ChannelInfo) -> Route | None:
    adapter = adapter_for(channel.kind)
    if adapter.serves(endpoint, channel):
        return Route(adapter, endpoint, bridged=False)
    if endpoint.name in BRIDGES and adapter.serves(endpoints.CHAT_COMPLETIONS, channel):
        return Route(adapter, endpoint, bridged=True)
    return None


class BridgedStream:
    """
    A provider's chat completion stream, rewritten into another format's
    events on the way: the provider's translator reads the upstream's bytes
    and keeps the usage; the format's writes what the client reads.
    """

    def __init__(self, chat: StreamTranslator, outer, *, response_id: str):
        self.chat = chat
        self.outer = outer
        self.error = ""
        self.response_id = response_id
        self._buffer = SSEBuffer()

    @property
    def usage(self) -> TokenUsage | None:
        return self.chat.usage

    @property
    def prompt_usage(self) -> TokenUsage | None:
        return self.chat.prompt_usage

    @property
    def text(self) -> list[str]:
        return self.chat.text

    @property
    def done(self) -> bool:
        return self.chat.done

    @property
    def broken(self) -> bytes:
        return self.outer.broken()

    def feed(self, data: bytes) -> bytes:
        return self._rewrite(self.chat.feed(data))

    def end(self) -> bytes:
        return self._rewrite(self.chat.end())

    def _rewrite(self, chat_events: bytes) -> bytes:
        out = []
        for event in self._buffer.feed(chat_events):
            data = event_data(event)
            if not data or data == DONE:
                continue
            chunk = orjson.loads(data)
            if "error" in chunk:
                self.error = error_message(chunk["error"])
                out.append(self.outer.fail(chunk["error"]))
                break
            out.append(self.outer.feed(chunk))
        return b"".join(out)

    def close(self, usage: TokenUsage, bill: Bill | None = None) -> bytes:
        # Written once settled, so that it shows what was charged even when
        # the upstream reported nothing and the usage is an estimate; and
        # what it cost (relay.formats.usage.Bill).
        return self.outer.finish(usage, bill)
