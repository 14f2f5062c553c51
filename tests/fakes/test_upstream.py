"""Tests of the fake OpenAI upstream itself, over real loopback HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.fakes.upstream import (
    DEFAULT_REPLY,
    SYSTEM_FINGERPRINT,
    FakeUpstream,
    expected_prompt_tokens,
    expected_usage,
    split_reply,
)

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello to the test suite"},
]
CHAT = "/chat/completions"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeUpstream) -> FakeUpstream:
    server.reset()
    return server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as http:
        yield http


def chat_body(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": MESSAGES, **extra}


def read_sse(response: httpx.Response) -> list[Any]:
    """Decode an SSE body into JSON events, keeping the [DONE] marker as-is."""
    events: list[Any] = []
    for block in response.text.split("\n\n"):
        if not block:
            continue
        assert block.startswith("data: ")
        payload = block[len("data: ") :]
        events.append(payload if payload == "[DONE]" else orjson.loads(payload))
    return events


def test_prompt_token_helper_counts_words_and_overhead() -> None:
    messages = [
        {"role": "system", "content": "one two"},
        {"role": "user", "content": [{"type": "text", "text": "three four five"}]},
        {"role": "assistant", "content": None},
    ]
    assert expected_prompt_tokens(messages) == 3 + (3 + 2) + (3 + 3) + 3
    assert split_reply(DEFAULT_REPLY)[:2] == ["Hello! ", "This "]
    assert "".join(split_reply(DEFAULT_REPLY)) == DEFAULT_REPLY


def test_non_streaming_response_shape_and_usage(
    fake: FakeUpstream, client: httpx.Client
) -> None:
    response = client.post(fake.url() + CHAT, json=chat_body())

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert data["id"].startswith("chatcmpl-")
    assert data["object"] == "chat.completion"
    assert isinstance(data["created"], int)
    assert data["model"] == "gpt-4o-mini"
    assert data["system_fingerprint"] == SYSTEM_FINGERPRINT
    [choice] = data["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == DEFAULT_REPLY
    assert choice["message"]["refusal"] is None
    usage = data["usage"]
    assert usage == expected_usage(MESSAGES)
    assert usage["prompt_tokens"] == (3 + 3) + (3 + 6) + 3
    assert usage["completion_tokens"] == len(split_reply(DEFAULT_REPLY))
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0


def test_cached_and_reasoning_tokens_are_reported(
    fake: FakeUpstream, client: httpx.Client
) -> None:
    fake.scenario("cache", cached_tokens=5, reasoning_tokens=7, reply="a b")

    usage = client.post(fake.url("cache") + CHAT, json=chat_body()).json()["usage"]

    assert usage["prompt_tokens_details"]["cached_tokens"] == 5
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 7
    assert usage["completion_tokens"] == 2 + 7
    assert usage == expected_usage(MESSAGES, "a b", cached_tokens=5, reasoning_tokens=7)


def test_streaming_without_include_usage_sends_no_usage(
    fake: FakeUpstream, client: httpx.Client
) -> None:
    response = client.post(fake.url() + CHAT, json=chat_body(stream=True))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.endswith("data: [DONE]\n\n")
    *chunks, done = read_sse(response)
    assert done == "[DONE]"
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert all("usage" not in chunk for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == DEFAULT_REPLY
    # One content chunk per word, plus the role opener and the finish chunk.
    assert len(chunks) == len(split_reply(DEFAULT_REPLY)) + 2
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }


def test_streaming_with_include_usage_appends_usage_chunk(
    fake: FakeUpstream, client: httpx.Client
) -> None:
    body = chat_body(stream=True, stream_options={"include_usage": True})

    *chunks, usage_chunk, done = read_sse(client.post(fake.url() + CHAT, json=body))

    assert done == "[DONE]"
    assert all(chunk["usage"] is None for chunk in chunks)
    assert all(len(chunk["choices"]) == 1 for chunk in chunks)
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == expected_usage(MESSAGES)
    assert usage_chunk["id"] == chunks[0]["id"]


def test_usage_in_stream_knob_ignores_include_usage(
    fake: FakeUpstream, client: httpx.Client
) -> None:
    fake.scenario("nousage", usage_in_stream=False)
    body = chat_body(stream=True, stream_options={"include_usage": True})

    events = read_sse(client.post(fake.url("nousage") + CHAT, json=body))

    assert events[-1] == "[DONE]"
    assert all("usage" not in event for event in events[:-1])


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_token_limit_truncates_reply(
    fake: FakeUpstream, client: httpx.Client, param: str
) -> None:
    data = client.post(fake.url() + CHAT, json=chat_body(**{param: 2})).json()

    assert data["choices"][0]["message"]["content"] == "Hello! This "
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 2
    assert data["usage"] == expected_usage(MESSAGES, max_tokens=2)

    body = chat_body(stream=True, stream_options={"include_usage": True}, **{param: 2})
    *chunks, usage_chunk, _ = read_sse(client.post(fake.url() + CHAT, json=body))
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert len(chunks) == 2 + 2
    assert usage_chunk["usage"]["completion_tokens"] == 2


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(400, "invalid_request_error"), (429, "requests"), (500, "server_error")],
)
def test_status_knob_returns_openai_error(
    fake: FakeUpstream, client: httpx.Client, status: int, error_type: str
) -> None:
    fake.scenario("broken", status=status)

    response = client.post(fake.url("broken") + CHAT, json=chat_body(stream=True))

    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == error_type
    if status == 429:
        assert error["code"] == "rate_limit_exceeded"
        assert response.headers["retry-after"] == "1"


def test_error_body_knob_is_sent_verbatim(
    fake: FakeUpstream, client: httpx.Client
) -> None:
    body = {"error": {"message": "nope", "type": "x", "param": None, "code": "y"}}
    fake.scenario("custom", status=503, error_body=body)

    response = client.post(fake.url("custom") + CHAT, json=chat_body())

    assert response.status_code == 503
    assert response.json() == body


def test_latency_knob_delays_response(fake: FakeUpstream, client: httpx.Client) -> None:
    fake.scenario("slow", latency=0.2)

    started = time.monotonic()
    response = client.post(fake.url("slow") + CHAT, json=chat_body())
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert 0.2 <= elapsed < 1.5


def test_drop_after_chunks_closes_stream_without_done(
    fake: FakeUpstream, client: httpx.Client
) -> None:
    fake.scenario("crash", drop_after_chunks=2)
    body = chat_body(stream=True, stream_options={"include_usage": True})
    lines: list[str] = []

    def consume() -> None:
        with client.stream("POST", fake.url("crash") + CHAT, json=body) as response:
            assert response.status_code == 200
            lines.extend(line for line in response.iter_lines() if line)

    with pytest.raises(httpx.RemoteProtocolError):
        consume()

    events = [orjson.loads(line[len("data: ") :]) for line in lines]
    contents = [e["choices"][0]["delta"].get("content") for e in events[1:]]
    assert contents == ["Hello! ", "This "]
    assert "data: [DONE]" not in lines
    assert all(event["usage"] is None for event in events)


def test_drop_after_chunks_without_stream_sends_nothing(
    fake: FakeUpstream, client: httpx.Client
) -> None:
    fake.scenario("crash", drop_after_chunks=0)

    with pytest.raises(httpx.RemoteProtocolError):
        client.post(fake.url("crash") + CHAT, json=chat_body())


def test_require_key_rejects_missing_or_wrong_key(
    fake: FakeUpstream, client: httpx.Client
) -> None:
    fake.scenario("auth", require_key="sk-good")
    url = fake.url("auth") + CHAT

    missing = client.post(url, json=chat_body())
    wrong = client.post(url, json=chat_body(), headers={"Authorization": "Bearer x"})
    good = client.post(
        url, json=chat_body(), headers={"Authorization": "Bearer sk-good"}
    )

    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
    assert good.status_code == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": MESSAGES}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": [{"content": "x"}]}, "messages[0].role"),
        ({**chat_body(), "stream_options": {"include_usage": True}}, "stream_options"),
        (chat_body(max_tokens=0), "max_tokens"),
    ],
)
def test_invalid_requests_get_400_with_param(
    fake: FakeUpstream, client: httpx.Client, body: dict[str, Any], param: str
) -> None:
    response = client.post(fake.url() + CHAT, json=body)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_non_json_body_is_rejected(fake: FakeUpstream, client: httpx.Client) -> None:
    not_json = client.post(
        fake.url() + CHAT,
        content=b"{oops",
        headers={"content-type": "application/json"},
    )
    wrong_type = client.post(
        fake.url() + CHAT,
        content=orjson.dumps(chat_body()),
        headers={"content-type": "text/plain"},
    )

    assert not_json.status_code == 400
    assert wrong_type.status_code == 400


def test_models_route_and_unknown_paths(
    fake: FakeUpstream, client: httpx.Client
) -> None:
    models = client.get(fake.url() + "/models")
    unknown_route = client.get(fake.url() + "/embeddings")
    unknown_scenario = client.post(fake.url("nope") + CHAT, json=chat_body())

    assert models.status_code == 200
    assert models.json()["object"] == "list"
    assert {m["object"] for m in models.json()["data"]} == {"model"}
    assert unknown_route.status_code == 404
    assert unknown_scenario.status_code == 404


def test_requests_are_recorded_and_counted(
    fake: FakeUpstream, client: httpx.Client
) -> None:
    fake.scenario("rec")
    body = chat_body(stream=True, stream_options={"include_usage": True})

    client.post(
        fake.url("rec") + CHAT,
        json=body,
        headers={"Authorization": "Bearer sk-upstream", "X-Trace": "abc"},
    )
    client.post(fake.url() + CHAT, json=chat_body())

    first, second = fake.requests
    assert first.method == "POST"
    assert first.path == "/s/rec/v1/chat/completions"
    assert first.scenario == "rec"
    assert first.headers["x-trace"] == "abc"
    assert first.api_key == "sk-upstream"
    assert first.body["stream_options"] == {"include_usage": True}
    assert second.scenario == "default"
    assert fake.last_request == second
    assert fake.requests_for("rec") == [first]
    assert fake.request_counts == {"rec": 1, "default": 1}

    fake.reset()
    assert fake.requests == []
    assert fake.request_counts == {}


def test_client_disconnect_mid_stream_is_counted(
    fake: FakeUpstream, client: httpx.Client
) -> None:
    fake.scenario("trickle", chunk_delay=0.05)
    body = chat_body(stream=True)

    with client.stream("POST", fake.url("trickle") + CHAT, json=body) as response:
        first_line = next(response.iter_lines())
    assert first_line.startswith("data: ")

    assert fake.wait_for(lambda: fake.aborted_streams == 1)
    assert fake.aborted_counts == {"trickle": 1}
    # The server must keep serving after the aborted stream.
    assert client.post(fake.url() + CHAT, json=chat_body()).status_code == 200
