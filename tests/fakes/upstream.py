"""Fake OpenAI-compatible upstream provider served over real HTTP.

The relay's tests and benchmark talk to this server exactly as they would
talk to api.openai.com, so it speaks the chat-completions wire format byte
for byte where it matters: ``chat.completion`` objects, ``chat.completion.chunk``
server-sent events ending in ``data: [DONE]``, the usage object (including
``stream_options.include_usage`` semantics) and ``{"error": {...}}`` bodies.

Routes (``{prefix}`` is empty for the ``default`` scenario, or ``/s/<name>``)::

    POST {prefix}/v1/chat/completions
    GET  {prefix}/v1/models

Token accounting is deterministic so tests can predict billed figures:

* ``prompt_tokens`` = 3 per message + number of whitespace-separated words in
  every message's text content (string content, or the ``text`` of
  ``{"type": "text"}`` parts) + 3 for the reply primer.
* ``completion_tokens`` = number of reply chunks (one per word) after any
  ``max_tokens`` / ``max_completion_tokens`` truncation, plus the scenario's
  ``reasoning_tokens`` (reasoning counts as completion, as in the real API).
* ``cached_tokens`` = the scenario's ``cached_tokens``, capped at
  ``prompt_tokens`` because the real API never reports more cached than sent.

Run standalone for the benchmark::

    python -m tests.fakes.upstream --port 9100 [--latency 0] [--chunk-delay 0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from types import TracebackType
from typing import Any, Self

import orjson
import uvicorn

from tests.servers import ThreadedServer

__all__ = [
    "DEFAULT_MODELS",
    "DEFAULT_REPLY",
    "DEFAULT_SCENARIO",
    "SYSTEM_FINGERPRINT",
    "FakeUpstream",
    "RecordedRequest",
    "Scenario",
    "apply_token_limit",
    "expected_prompt_tokens",
    "expected_usage",
    "openai_error",
    "split_reply",
    "status_error",
    "token_limit",
]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_SCENARIO = "default"
DEFAULT_REPLY = "Hello! This is the fake upstream."
DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o")
SYSTEM_FINGERPRINT = "fp_fakeupstream"
MAX_RECORDED = 1000

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
SCENARIO_PREFIX = "/s/"

_VALID_ROLES = frozenset(
    {"system", "developer", "user", "assistant", "tool", "function"}
)
_TOKEN_LIMIT_PARAMS = ("max_completion_tokens", "max_tokens")
_WORD_RE = re.compile(r"\s*\S+\s*")
_MODEL_CREATED = 1686935002
_DONE_EVENT = b"data: [DONE]\n\n"
_JSON_HEADERS = [(b"content-type", b"application/json")]
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
# A per-process prefix keeps ids unique across fake instances and runs
# without paying for a random draw on every request.
_ID_PREFIX = os.urandom(4).hex()
_ids = itertools.count(1)

_BAD_JSON_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely "
    "means you aren't using your HTTP library correctly. The OpenAI API "
    "expects a JSON payload, but what was sent was not valid JSON.)"
)
_STATUS_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("invalid_request_error", "Fake upstream rejected the request.", None),
    401: (
        "invalid_request_error",
        "Incorrect API key provided.",
        "invalid_api_key",
    ),
    403: ("invalid_request_error", "Access denied by fake upstream.", None),
    404: (
        "invalid_request_error",
        "The model does not exist or you do not have access to it.",
        "model_not_found",
    ),
    429: (
        "requests",
        "Rate limit reached for requests. Please try again in 1s.",
        "rate_limit_exceeded",
    ),
}


def openai_error(
    message: str,
    error_type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """Build an OpenAI-shaped error body."""
    return {
        "error": {
            "message": message,
            "type": error_type,
            "param": param,
            "code": code,
        }
    }


def status_error(status: int) -> dict[str, Any]:
    """Return the error body the fake sends for a forced HTTP ``status``."""
    if status in _STATUS_ERRORS:
        type_, message, code = _STATUS_ERRORS[status]
        return openai_error(message, type_, None, code)
    if status >= 500:
        return openai_error(
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
        )
    return openai_error(f"Fake upstream error ({status}).")


def split_reply(text: str) -> list[str]:
    """Split ``text`` into streaming chunks: one per word, trailing space kept."""
    return _WORD_RE.findall(text)


def _content_words(content: Any) -> int:
    if isinstance(content, str):
        return len(content.split())
    if isinstance(content, list):
        return sum(
            len(part["text"].split())
            for part in content
            if isinstance(part, dict)
            and part.get("type") == "text"
            and isinstance(part.get("text"), str)
        )
    return 0


def expected_prompt_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """Return the ``prompt_tokens`` the fake reports for ``messages``."""
    total = 3
    for message in messages:
        total += 3 + _content_words(message.get("content"))
    return total


def token_limit(body: Mapping[str, Any]) -> int | None:
    """Return the smallest completion-token cap present in a request body."""
    limits = [
        body[name]
        for name in _TOKEN_LIMIT_PARAMS
        if isinstance(body.get(name), int) and not isinstance(body[name], bool)
    ]
    return min(limits) if limits else None


def apply_token_limit(chunks: list[str], limit: int | None) -> tuple[list[str], str]:
    """Truncate reply ``chunks`` to ``limit`` and return the finish_reason."""
    if limit is not None and limit < len(chunks):
        return chunks[:limit], "length"
    return chunks, "stop"


def expected_usage(
    messages: Iterable[Mapping[str, Any]],
    reply: str = DEFAULT_REPLY,
    *,
    max_tokens: int | None = None,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> dict[str, Any]:
    """Return the usage object the fake reports for a request and reply."""
    prompt = expected_prompt_tokens(messages)
    chunks, _ = apply_token_limit(split_reply(reply), max_tokens)
    completion = len(chunks) + reasoning_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {
            "cached_tokens": min(cached_tokens, prompt),
            "audio_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


@dataclass(frozen=True)
class Scenario:
    """Behaviour knobs for one named upstream personality.

    Frozen so the server thread always sees a consistent set of knobs;
    reconfigure by replacing the scenario with ``FakeUpstream.scenario``.
    """

    latency: float = 0.0
    status: int | None = None
    error_body: dict[str, Any] | None = None
    drop_after_chunks: int | None = None
    chunk_delay: float = 0.0
    reply: str = DEFAULT_REPLY
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    usage_in_stream: bool = True
    require_key: str | None = None
    retry_after: int | None = 1
    models: tuple[str, ...] = DEFAULT_MODELS

    def __post_init__(self) -> None:
        """Reject knob values that would make a test silently meaningless."""
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"status must be a 4xx/5xx code, got {self.status}")
        if self.latency < 0 or self.chunk_delay < 0:
            raise ValueError("latency and chunk_delay must be >= 0")
        if self.drop_after_chunks is not None and self.drop_after_chunks < 0:
            raise ValueError("drop_after_chunks must be >= 0")
        if self.cached_tokens < 0 or self.reasoning_tokens < 0:
            raise ValueError("token counts must be >= 0")

    @cached_property
    def chunks(self) -> list[str]:
        """Return the reply split into streaming chunks."""
        return split_reply(self.reply)

    @property
    def failing(self) -> bool:
        """Return whether every request gets an error response."""
        return self.status is not None or self.error_body is not None


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    query: str
    scenario: str | None
    headers: dict[str, str]
    body: Any
    raw_body: bytes
    received_at: float

    @property
    def api_key(self) -> str | None:
        """Return the bearer token the client sent, if any."""
        auth = self.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:]
        return self.headers.get("api-key")


class _DropConnectionError(Exception):
    """Ask the server to kill the connection when the transport is hidden."""


def _drop_connection(send: Send) -> None:
    """Close the client's TCP connection without finishing the HTTP response."""
    # ASGI has no "abort" message; uvicorn's send is a bound method of its
    # request cycle, which owns the transport. Marking the cycle disconnected
    # stops uvicorn from logging an error or writing a fallback 500 response.
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise _DropConnectionError
    transport.close()
    cycle.disconnected = True


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _validate_chat(content_type: str, body: Any) -> dict[str, Any] | None:
    """Return the 400 error body the real API would give, or None if valid."""
    if not content_type.startswith("application/json") or not isinstance(body, dict):
        return openai_error(_BAD_JSON_MESSAGE)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return openai_error(
            "you must provide a model parameter",
            param="model",
            code="missing_required_parameter",
        )
    messages = body.get("messages")
    if messages is None:
        return openai_error(
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    if not isinstance(messages, list):
        return openai_error(
            "Invalid type for 'messages': expected an array.",
            param="messages",
            code="invalid_type",
        )
    if not messages:
        return openai_error(
            "Invalid 'messages': empty array. Expected an array with minimum "
            "length 1, but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _VALID_ROLES:
            return openai_error(
                f"Invalid value for 'messages[{index}].role'.",
                param=f"messages[{index}].role",
                code="invalid_value",
            )
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        return openai_error(
            "Invalid type for 'stream': expected a boolean.",
            param="stream",
            code="invalid_type",
        )
    if body.get("stream_options") is not None and stream is not True:
        return openai_error(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
        )
    for name in _TOKEN_LIMIT_PARAMS:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            return openai_error(
                f"Invalid '{name}': expected an integer >= 1.",
                param=name,
                code="integer_below_min_value",
            )
    return None


AZURE_CHAT = re.compile(r"/openai/deployments/([^/]+)/chat/completions")


def _split_path(path: str) -> tuple[str | None, str]:
    """Split a request path into (scenario name, API route)."""
    if not path.startswith(SCENARIO_PREFIX):
        return DEFAULT_SCENARIO, path
    name, sep, rest = path[len(SCENARIO_PREFIX) :].partition("/")
    if not name or not sep:
        return None, path
    return name, "/" + rest


async def _send_json(
    send: Send,
    status: int,
    payload: Any,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = orjson.dumps(payload)
    headers = [
        *_JSON_HEADERS,
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", f"req_{_ID_PREFIX}{next(_ids):012x}".encode()),
    ]
    if extra_headers:
        headers.extend(extra_headers)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class FakeUpstream:
    """A fake OpenAI upstream: an ASGI app plus a uvicorn server thread.

    Configure behaviour per scenario with :meth:`scenario`, point a client at
    :meth:`url`, and inspect :attr:`requests`, :attr:`request_counts` and
    :attr:`aborted_streams` afterwards. The instance itself is the ASGI app.
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        """Prepare (but do not start) a fake bound to ``host``:``port``."""
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._scenarios: dict[str, Scenario] = {DEFAULT_SCENARIO: Scenario()}
        self._requests: deque[RecordedRequest] = deque(maxlen=MAX_RECORDED)
        self._request_counts: Counter[str] = Counter()
        self._aborted_counts: Counter[str] = Counter()
        self._server: ThreadedServer | None = None

    # -- configuration -----------------------------------------------------

    def scenario(self, name: str = DEFAULT_SCENARIO, **knobs: Any) -> Scenario:
        """Create or replace scenario ``name`` with ``knobs`` (see Scenario)."""
        if not name or "/" in name:
            raise ValueError(f"invalid scenario name {name!r}")
        if "models" in knobs:
            knobs["models"] = tuple(knobs["models"])
        created = Scenario(**knobs)
        with self._lock:
            self._scenarios[name] = created
        return created

    def get_scenario(self, name: str = DEFAULT_SCENARIO) -> Scenario:
        """Return the knobs currently in force for scenario ``name``."""
        return self._scenarios[name]

    def reset(self) -> None:
        """Forget all scenarios, recorded requests and counters."""
        with self._lock:
            self._scenarios = {DEFAULT_SCENARIO: Scenario()}
            self._requests.clear()
            self._request_counts.clear()
            self._aborted_counts.clear()

    # -- inspection --------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Return a snapshot of the last requests received, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, scenario: str = DEFAULT_SCENARIO) -> list[RecordedRequest]:
        """Return the recorded requests routed to ``scenario``."""
        return [r for r in self.requests if r.scenario == scenario]

    @property
    def last_request(self) -> RecordedRequest | None:
        """Return the most recent request, or None if none arrived."""
        with self._lock:
            return self._requests[-1] if self._requests else None

    @property
    def request_counts(self) -> Counter[str]:
        """Return a snapshot of request counts keyed by scenario name."""
        with self._lock:
            return Counter(self._request_counts)

    @property
    def aborted_streams(self) -> int:
        """Return how many streams the client abandoned before [DONE]."""
        with self._lock:
            return sum(self._aborted_counts.values())

    @property
    def aborted_counts(self) -> Counter[str]:
        """Return a snapshot of abandoned-stream counts keyed by scenario."""
        with self._lock:
            return Counter(self._aborted_counts)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
        """Poll ``predicate`` until true or ``timeout``; return its last value."""
        # The server notices disconnects asynchronously, so assertions about
        # aborted streams must allow it a moment to catch up.
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return predicate()
            time.sleep(0.005)
        return True

    # -- addresses ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Return ``http://host:port`` of the running server."""
        if self._server is None:
            raise RuntimeError("FakeUpstream is not started")
        return f"http://{self.host}:{self.port}"

    def url(self, scenario: str = DEFAULT_SCENARIO) -> str:
        """Return the OpenAI base URL (ending in ``/v1``) for ``scenario``."""
        if scenario == DEFAULT_SCENARIO:
            return f"{self.base_url}/v1"
        return f"{self.base_url}{SCENARIO_PREFIX}{scenario}/v1"

    # -- server lifecycle --------------------------------------------------

    def start(self) -> Self:
        """Serve in a daemon thread and return once connections are accepted."""
        if self._server is not None:
            raise RuntimeError("FakeUpstream is already started")
        self._server = ThreadedServer(
            self, host=self.host, port=self.port, **self._uvicorn_options()
        ).start()
        self.port = self._server.port
        return self

    def stop(self) -> None:
        """Shut the server down and wait for its thread to finish."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Self:
        """Start the server for the duration of a ``with`` block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (standalone mode)."""
        server = ThreadedServer(
            self, host=self.host, port=self.port, **self._uvicorn_options()
        )
        sock = server.bind()
        self.port = server.port
        print(f"Fake upstream listening on {self.host}:{self.port}", flush=True)
        print(f"OPENAI_BASE_URL=http://{self.host}:{self.port}/v1", flush=True)
        uvicorn.Server(server.uvicorn_config()).run(sockets=[sock])

    @staticmethod
    def _uvicorn_options() -> dict[str, Any]:
        return {"interface": "asgi3", "proxy_headers": False}

    # -- ASGI app ----------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI HTTP request."""
        if scope["type"] != "http":
            return
        raw_body = await _read_body(receive)
        if raw_body is None:
            return
        name, route = _split_path(scope["path"])
        headers = {
            key.decode("latin-1").lower(): value.decode("latin-1")
            for key, value in scope["headers"]
        }
        try:
            body = orjson.loads(raw_body) if raw_body else None
        except orjson.JSONDecodeError:
            body = None
        method = scope["method"]
        self._record(
            RecordedRequest(
                method=method,
                path=scope["path"],
                query=scope.get("query_string", b"").decode("latin-1"),
                scenario=name,
                headers=headers,
                body=body,
                raw_body=raw_body,
                received_at=time.monotonic(),
            )
        )

        scenario = self._scenarios.get(name) if name else None
        azure = AZURE_CHAT.fullmatch(route)
        if azure is not None and method == "POST":
            # Azure OpenAI: the deployment names the model, the key travels in
            # `api-key`, and api-version is mandatory.
            if "api-version=" not in scope.get("query_string", b"").decode():
                await _send_json(
                    send, 404, openai_error("Resource not found", code="404")
                )
                return
            if not headers.get("api-key"):
                await _send_json(send, 401, status_error(401))
                return
            if isinstance(body, dict):
                body.setdefault("model", azure.group(1))
            route = CHAT_PATH
        if (method, route) not in (("POST", CHAT_PATH), ("GET", MODELS_PATH)):
            await _send_json(
                send,
                404,
                openai_error(f"Invalid URL ({method} {scope['path']})"),
            )
            return
        if scenario is None:
            await _send_json(
                send,
                404,
                openai_error(
                    f"Unknown fake-upstream scenario {name!r}; define it with "
                    "FakeUpstream.scenario() first.",
                    code="unknown_scenario",
                ),
            )
            return

        if scenario.latency:
            await asyncio.sleep(scenario.latency)
        key = scenario.require_key
        if key is not None and headers.get("authorization") != f"Bearer {key}":
            await _send_json(send, 401, status_error(401))
            return

        if route == MODELS_PATH:
            if scenario.failing:
                await self._send_failure(send, scenario)
                return
            await _send_json(send, 200, self._models_payload(scenario))
            return

        invalid = _validate_chat(headers.get("content-type", ""), body)
        if invalid is not None:
            await _send_json(send, 400, invalid)
            return
        if scenario.failing:
            await self._send_failure(send, scenario)
            return
        if body.get("stream") is True:
            await self._stream(name, scenario, body, receive, send)
            return
        if scenario.drop_after_chunks is not None:
            _drop_connection(send)
            return
        await _send_json(send, 200, self._completion_payload(scenario, body))

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._request_counts[request.scenario or ""] += 1

    async def _send_failure(self, send: Send, scenario: Scenario) -> None:
        status = scenario.status or 500
        payload = scenario.error_body or status_error(status)
        extra = None
        if status == 429 and scenario.retry_after is not None:
            extra = [(b"retry-after", str(scenario.retry_after).encode())]
        await _send_json(send, status, payload, extra)

    @staticmethod
    def _models_payload(scenario: Scenario) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {
                    "id": model,
                    "object": "model",
                    "created": _MODEL_CREATED,
                    "owned_by": "openai",
                }
                for model in scenario.models
            ],
        }

    @staticmethod
    def _usage(scenario: Scenario, body: dict[str, Any]) -> dict[str, Any]:
        return expected_usage(
            body["messages"],
            scenario.reply,
            max_tokens=token_limit(body),
            cached_tokens=scenario.cached_tokens,
            reasoning_tokens=scenario.reasoning_tokens,
        )

    def _completion_payload(
        self, scenario: Scenario, body: dict[str, Any]
    ) -> dict[str, Any]:
        chunks, finish_reason = apply_token_limit(scenario.chunks, token_limit(body))
        return {
            "id": f"chatcmpl-{_ID_PREFIX}{next(_ids):012x}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "".join(chunks),
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": self._usage(scenario, body),
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }

    async def _stream(
        self,
        name: str,
        scenario: Scenario,
        body: dict[str, Any],
        receive: Receive,
        send: Send,
    ) -> None:
        options = body.get("stream_options")
        include_usage = (
            scenario.usage_in_stream
            and isinstance(options, dict)
            and options.get("include_usage") is True
        )
        chunks, finish_reason = apply_token_limit(scenario.chunks, token_limit(body))
        base = {
            "id": f"chatcmpl-{_ID_PREFIX}{next(_ids):012x}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body["model"],
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }

        def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
            chunk = {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": delta,
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
            }
            if include_usage:
                chunk["usage"] = None
            return b"data: " + orjson.dumps(chunk) + b"\n\n"

        # uvicorn's send() silently discards writes after the client leaves,
        # so a concurrent receive() is the only way to notice the disconnect.
        watcher = asyncio.create_task(_wait_disconnect(receive))
        try:
            await send(
                {"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS}
            )
            await self._send_event(
                send, event({"role": "assistant", "content": "", "refusal": None})
            )
            drop_at = scenario.drop_after_chunks
            for index, text in enumerate(chunks):
                if index == drop_at:
                    _drop_connection(send)
                    return
                if scenario.chunk_delay:
                    await asyncio.wait((watcher,), timeout=scenario.chunk_delay)
                if watcher.done():
                    self._note_abort(name)
                    return
                await self._send_event(send, event({"content": text}))
            if drop_at is not None:
                _drop_connection(send)
                return
            if watcher.done():
                self._note_abort(name)
                return
            await self._send_event(send, event({}, finish_reason))
            if include_usage:
                usage = self._usage(scenario, body)
                usage_chunk = {**base, "choices": [], "usage": usage}
                await self._send_event(
                    send, b"data: " + orjson.dumps(usage_chunk) + b"\n\n"
                )
            await send({"type": "http.response.body", "body": _DONE_EVENT})
        except OSError:
            # Servers other than uvicorn may raise on writes to a closed socket.
            self._note_abort(name)
        finally:
            watcher.cancel()

    @staticmethod
    async def _send_event(send: Send, data: bytes) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": True})

    def _note_abort(self, name: str) -> None:
        with self._lock:
            self._aborted_counts[name] += 1


def main(argv: list[str] | None = None) -> None:
    """Serve the default scenario forever for benchmarks and manual testing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    parser.add_argument("--reply", default=DEFAULT_REPLY)
    args = parser.parse_args(argv)
    fake = FakeUpstream(port=args.port, host=args.host)
    fake.scenario(latency=args.latency, chunk_delay=args.chunk_delay, reply=args.reply)
    with contextlib.suppress(KeyboardInterrupt):
        fake.serve_forever()


if __name__ == "__main__":
    main()
