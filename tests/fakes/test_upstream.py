"""Tests of the fake OpenAI upstream itself, over real loopback HTTP."""

from __future__ import annotations

import array
import base64
import time
from typing import Any

import httpx
import orjson
import pytest

from tests.fakes.upstream import (
    DEFAULT_EMBEDDING_DIMENSIONS,
    DEFAULT_REPLY,
    FAKE_PNG,
    IMAGE_OUTPUT_TOKENS,
    IMAGE_QUALITIES,
    IMAGE_SIZES,
    LEGACY_DEFAULT_MAX_TOKENS,
    SYSTEM_FINGERPRINT,
    FakeUpstream,
    completion_limit,
    completion_prompts,
    decode_embedding,
    embedding_inputs,
    embedding_vector,
    encode_embedding,
    expected_completion_prompt_tokens,
    expected_completion_usage,
    expected_embedding_tokens,
    expected_embedding_usage,
    expected_embeddings,
    expected_image_usage,
    expected_prompt_tokens,
    expected_usage,
    image_family,
    split_reply,
)

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello to the test suite"},
]
CHAT = "/chat/completions"
COMPLETIONS = "/completions"
EMBEDDINGS = "/embeddings"
EMBEDDING_MODEL = "text-embedding-3-small"
PROMPT = "Say hello to the test suite"


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
    fake: FakeUpstream, http: httpx.Client
) -> None:
    response = http.post(fake.url() + CHAT, json=chat_body())

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
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.scenario("cache", cached_tokens=5, reasoning_tokens=7, reply="a b")

    usage = http.post(fake.url("cache") + CHAT, json=chat_body()).json()["usage"]

    assert usage["prompt_tokens_details"]["cached_tokens"] == 5
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 7
    assert usage["completion_tokens"] == 2 + 7
    assert usage == expected_usage(MESSAGES, "a b", cached_tokens=5, reasoning_tokens=7)


def test_streaming_without_include_usage_sends_no_usage(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    response = http.post(fake.url() + CHAT, json=chat_body(stream=True))

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
    fake: FakeUpstream, http: httpx.Client
) -> None:
    body = chat_body(stream=True, stream_options={"include_usage": True})

    *chunks, usage_chunk, done = read_sse(http.post(fake.url() + CHAT, json=body))

    assert done == "[DONE]"
    assert all(chunk["usage"] is None for chunk in chunks)
    assert all(len(chunk["choices"]) == 1 for chunk in chunks)
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == expected_usage(MESSAGES)
    assert usage_chunk["id"] == chunks[0]["id"]


def test_usage_in_stream_knob_ignores_include_usage(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.scenario("nousage", usage_in_stream=False)
    body = chat_body(stream=True, stream_options={"include_usage": True})

    events = read_sse(http.post(fake.url("nousage") + CHAT, json=body))

    assert events[-1] == "[DONE]"
    assert all("usage" not in event for event in events[:-1])


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_token_limit_truncates_reply(
    fake: FakeUpstream, http: httpx.Client, param: str
) -> None:
    data = http.post(fake.url() + CHAT, json=chat_body(**{param: 2})).json()

    assert data["choices"][0]["message"]["content"] == "Hello! This "
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 2
    assert data["usage"] == expected_usage(MESSAGES, max_tokens=2)

    body = chat_body(stream=True, stream_options={"include_usage": True}, **{param: 2})
    *chunks, usage_chunk, _ = read_sse(http.post(fake.url() + CHAT, json=body))
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert len(chunks) == 2 + 2
    assert usage_chunk["usage"]["completion_tokens"] == 2


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(400, "invalid_request_error"), (429, "requests"), (500, "server_error")],
)
def test_status_knob_returns_openai_error(
    fake: FakeUpstream, http: httpx.Client, status: int, error_type: str
) -> None:
    fake.scenario("broken", status=status)

    response = http.post(fake.url("broken") + CHAT, json=chat_body(stream=True))

    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == error_type
    if status == 429:
        assert error["code"] == "rate_limit_exceeded"
        assert response.headers["retry-after"] == "1"


def test_error_body_knob_is_sent_verbatim(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    body = {"error": {"message": "nope", "type": "x", "param": None, "code": "y"}}
    fake.scenario("custom", status=503, error_body=body)

    response = http.post(fake.url("custom") + CHAT, json=chat_body())

    assert response.status_code == 503
    assert response.json() == body


def test_latency_knob_delays_response(fake: FakeUpstream, http: httpx.Client) -> None:
    fake.scenario("slow", latency=0.2)

    started = time.monotonic()
    response = http.post(fake.url("slow") + CHAT, json=chat_body())
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert 0.2 <= elapsed < 1.5


def test_drop_after_chunks_closes_stream_without_done(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.scenario("crash", drop_after_chunks=2)
    body = chat_body(stream=True, stream_options={"include_usage": True})
    lines: list[str] = []

    def consume() -> None:
        with http.stream("POST", fake.url("crash") + CHAT, json=body) as response:
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
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.scenario("crash", drop_after_chunks=0)

    with pytest.raises(httpx.RemoteProtocolError):
        http.post(fake.url("crash") + CHAT, json=chat_body())


def test_require_key_rejects_missing_or_wrong_key(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.scenario("auth", require_key="sk-good")
    url = fake.url("auth") + CHAT

    missing = http.post(url, json=chat_body())
    wrong = http.post(url, json=chat_body(), headers={"Authorization": "Bearer x"})
    good = http.post(url, json=chat_body(), headers={"Authorization": "Bearer sk-good"})

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
    fake: FakeUpstream, http: httpx.Client, body: dict[str, Any], param: str
) -> None:
    response = http.post(fake.url() + CHAT, json=body)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_non_json_body_is_rejected(fake: FakeUpstream, http: httpx.Client) -> None:
    not_json = http.post(
        fake.url() + CHAT,
        content=b"{oops",
        headers={"content-type": "application/json"},
    )
    wrong_type = http.post(
        fake.url() + CHAT,
        content=orjson.dumps(chat_body()),
        headers={"content-type": "text/plain"},
    )

    assert not_json.status_code == 400
    assert wrong_type.status_code == 400


def test_models_route_and_unknown_paths(fake: FakeUpstream, http: httpx.Client) -> None:
    models = http.get(fake.url() + "/models")
    unknown_route = http.get(fake.url() + "/embeddings")
    unknown_scenario = http.post(fake.url("nope") + CHAT, json=chat_body())

    assert models.status_code == 200
    assert models.json()["object"] == "list"
    assert {m["object"] for m in models.json()["data"]} == {"model"}
    assert unknown_route.status_code == 404
    assert unknown_scenario.status_code == 404


def test_requests_are_recorded_and_counted(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.scenario("rec")
    body = chat_body(stream=True, stream_options={"include_usage": True})

    http.post(
        fake.url("rec") + CHAT,
        json=body,
        headers={"Authorization": "Bearer sk-upstream", "X-Trace": "abc"},
    )
    http.post(fake.url() + CHAT, json=chat_body())

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
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.scenario("trickle", chunk_delay=0.05)
    body = chat_body(stream=True)

    with http.stream("POST", fake.url("trickle") + CHAT, json=body) as response:
        first_line = next(response.iter_lines())
    assert first_line.startswith("data: ")

    assert fake.wait_for(lambda: fake.aborted_streams == 1)
    assert fake.aborted_counts == {"trickle": 1}
    # The server must keep serving after the aborted stream.
    assert http.post(fake.url() + CHAT, json=chat_body()).status_code == 200


# -- legacy completions ----------------------------------------------------


def text_body(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-3.5-turbo-instruct", "prompt": PROMPT, **extra}


def test_completion_helpers_split_prompts_and_count_tokens() -> None:
    assert completion_prompts("a b") == ["a b"]
    assert completion_prompts(["a b", "c"]) == ["a b", "c"]
    assert completion_prompts([1, 2, 3]) == [[1, 2, 3]]
    assert completion_prompts([[1, 2], [3]]) == [[1, 2], [3]]
    assert expected_completion_prompt_tokens("one two three") == 3
    assert expected_completion_prompt_tokens(["one two", "three"]) == 3
    assert expected_completion_prompt_tokens([5, 6, 7, 8]) == 4
    assert expected_completion_prompt_tokens([[5, 6], [7]]) == 3
    # An empty prompt is <|endoftext|>: one token. The suffix counts per prompt.
    assert expected_completion_prompt_tokens("") == 1
    assert expected_completion_prompt_tokens(["a", "b c"], suffix="x y") == 7
    assert completion_limit({}) == LEGACY_DEFAULT_MAX_TOKENS == 16
    assert completion_limit({"max_tokens": None}) == 16
    assert completion_limit({"max_tokens": 3}) == 3
    usage = expected_completion_usage(["a", "b"], "w1 w2 w3", max_tokens=2, n=3)
    assert usage == {"prompt_tokens": 2, "completion_tokens": 12, "total_tokens": 14}
    best = expected_completion_usage("a", "w1 w2", n=1, best_of=4, cached_tokens=5)
    assert best["completion_tokens"] == 8
    assert best["prompt_tokens_details"] == {"cached_tokens": 1, "audio_tokens": 0}


def test_completion_response_shape_and_usage(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    response = http.post(fake.url() + COMPLETIONS, json=text_body())

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert set(data) == {"id", "object", "created", "model", "choices", "usage"}
    assert data["id"].startswith("cmpl-")
    assert data["object"] == "text_completion"
    assert isinstance(data["created"], int)
    assert data["model"] == "gpt-3.5-turbo-instruct"
    assert data["choices"] == [
        {"text": DEFAULT_REPLY, "index": 0, "logprobs": None, "finish_reason": "stop"}
    ]
    assert data["usage"] == expected_completion_usage(PROMPT)
    assert data["usage"] == {
        "prompt_tokens": 6,
        "completion_tokens": len(split_reply(DEFAULT_REPLY)),
        "total_tokens": 6 + len(split_reply(DEFAULT_REPLY)),
    }


def test_completion_max_tokens_defaults_to_16(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    reply = " ".join(f"w{i}" for i in range(20))
    fake.scenario("long", reply=reply)
    url = fake.url("long") + COMPLETIONS

    for body in (text_body(), text_body(max_tokens=None)):
        data = http.post(url, json=body).json()
        assert data["choices"][0]["text"] == "".join(split_reply(reply)[:16])
        assert data["choices"][0]["finish_reason"] == "length"
        assert data["usage"]["completion_tokens"] == 16
        assert data["usage"] == expected_completion_usage(PROMPT, reply)

    data = http.post(url, json=text_body(max_tokens=20)).json()
    assert data["choices"][0] == {
        "text": reply,
        "index": 0,
        "logprobs": None,
        "finish_reason": "stop",
    }
    data = http.post(url, json=text_body(max_tokens=2)).json()
    assert data["choices"][0]["text"] == "w0 w1 "
    assert data["usage"] == expected_completion_usage(PROMPT, reply, max_tokens=2)


def test_completion_choices_per_prompt_n_and_best_of(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    prompts = ["one two", "three"]
    body = text_body(prompt=prompts, n=2, best_of=3, max_tokens=2, suffix="end")

    data = http.post(fake.url() + COMPLETIONS, json=body).json()

    assert [c["index"] for c in data["choices"]] == [0, 1, 2, 3]
    assert {c["text"] for c in data["choices"]} == {"Hello! This "}
    assert data["usage"] == expected_completion_usage(
        prompts, max_tokens=2, n=2, best_of=3, suffix="end"
    )
    # 3 candidates x 2 prompts x 2 tokens; prompts 2 + 1 words, +1 suffix each.
    assert data["usage"]["completion_tokens"] == 12
    assert data["usage"]["prompt_tokens"] == 5

    tokens = http.post(
        fake.url() + COMPLETIONS, json=text_body(prompt=[[1, 2], [3]])
    ).json()
    assert len(tokens["choices"]) == 2
    assert tokens["usage"]["prompt_tokens"] == 3


def test_completion_echo_prepends_string_prompts(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    url = fake.url() + COMPLETIONS
    body = text_body(prompt=["Once upon", "A"], echo=True, max_tokens=1)

    data = http.post(url, json=body).json()
    tokens = http.post(url, json=text_body(prompt=[1, 2], echo=True)).json()

    assert [c["text"] for c in data["choices"]] == ["Once uponHello! ", "AHello! "]
    # Echoed prompt text is not output.
    assert data["usage"]["completion_tokens"] == 2
    # No tokenizer: token-id prompts echo as nothing.
    assert tokens["choices"][0]["text"] == DEFAULT_REPLY


def test_completion_cached_tokens_knob(fake: FakeUpstream, http: httpx.Client) -> None:
    fake.scenario("cache", cached_tokens=4)

    usage = http.post(fake.url("cache") + COMPLETIONS, json=text_body()).json()["usage"]

    assert usage["prompt_tokens_details"] == {"cached_tokens": 4, "audio_tokens": 0}
    assert usage == expected_completion_usage(PROMPT, cached_tokens=4)


def test_completion_stream_without_include_usage(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    response = http.post(fake.url() + COMPLETIONS, json=text_body(stream=True))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    *chunks, done = read_sse(response)
    assert done == "[DONE]"
    assert all(chunk["object"] == "text_completion" for chunk in chunks)
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[0]["id"].startswith("cmpl-")
    assert all("usage" not in chunk for chunk in chunks)
    assert all(len(chunk["choices"]) == 1 for chunk in chunks)
    texts = [chunk["choices"][0]["text"] for chunk in chunks]
    assert texts == [*split_reply(DEFAULT_REPLY), ""]
    assert chunks[-1]["choices"][0] == {
        "text": "",
        "index": 0,
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])


def test_completion_stream_with_include_usage(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    body = text_body(stream=True, stream_options={"include_usage": True}, max_tokens=3)

    *chunks, usage_chunk, done = read_sse(
        http.post(fake.url() + COMPLETIONS, json=body)
    )

    assert done == "[DONE]"
    assert all(chunk["usage"] is None for chunk in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert "".join(c["choices"][0]["text"] for c in chunks) == "Hello! This is "
    assert usage_chunk["object"] == "text_completion"
    assert usage_chunk["id"] == chunks[0]["id"]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == expected_completion_usage(PROMPT, max_tokens=3)


def test_completion_stream_interleaves_choices(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    body = text_body(stream=True, n=2, max_tokens=2)

    *chunks, _ = read_sse(http.post(fake.url() + COMPLETIONS, json=body))

    indexes = [chunk["choices"][0]["index"] for chunk in chunks]
    assert indexes == [0, 1, 0, 1, 0, 1]
    for index in (0, 1):
        mine = [c["choices"][0] for c in chunks if c["choices"][0]["index"] == index]
        assert "".join(choice["text"] for choice in mine) == "Hello! This "
        assert mine[-1]["finish_reason"] == "length"


def test_completion_stream_knobs(fake: FakeUpstream, http: httpx.Client) -> None:
    fake.scenario("nousage", usage_in_stream=False)
    fake.scenario("crash", drop_after_chunks=2)
    body = text_body(stream=True, stream_options={"include_usage": True})

    events = read_sse(http.post(fake.url("nousage") + COMPLETIONS, json=body))
    assert events[-1] == "[DONE]"
    assert all("usage" not in event for event in events[:-1])

    lines: list[str] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream("POST", fake.url("crash") + COMPLETIONS, json=body) as response,
    ):
        lines.extend(line for line in response.iter_lines() if line)
    texts = [orjson.loads(line[6:])["choices"][0]["text"] for line in lines]
    assert texts == ["Hello! ", "This "]


def test_completion_client_disconnect_is_counted(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.scenario("trickle", chunk_delay=0.05)

    with http.stream(
        "POST", fake.url("trickle") + COMPLETIONS, json=text_body(stream=True)
    ) as response:
        assert next(response.iter_lines()).startswith("data: ")

    assert fake.wait_for(lambda: fake.aborted_counts == {"trickle": 1})


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": PROMPT}, "model"),
        ({"model": "m"}, "prompt"),
        ({"model": "m", "prompt": None}, "prompt"),
        (text_body(prompt=[]), "prompt"),
        (text_body(prompt=42), "prompt"),
        (text_body(prompt=[1, "a"]), "prompt"),
        (text_body(prompt=[[1], []]), "prompt"),
        (text_body(stream="yes"), "stream"),
        (text_body(stream_options={"include_usage": True}), "stream_options"),
        (text_body(max_tokens=-1), "max_tokens"),
        (text_body(max_tokens="16"), "max_tokens"),
        (text_body(n=0), "n"),
        (text_body(n=2, best_of=1), "best_of"),
        (text_body(best_of=2, stream=True), "best_of"),
        (text_body(logprobs=6), "logprobs"),
        (text_body(echo="yes"), "echo"),
        (text_body(suffix=1), "suffix"),
    ],
)
def test_invalid_completion_requests_get_400_with_param(
    fake: FakeUpstream, http: httpx.Client, body: dict[str, Any], param: str
) -> None:
    response = http.post(fake.url() + COMPLETIONS, json=body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"


# -- embeddings ------------------------------------------------------------


def embedding_body(**extra: Any) -> dict[str, Any]:
    return {"model": EMBEDDING_MODEL, "input": ["hello world", "goodbye"], **extra}


def test_embedding_helpers_are_deterministic_and_exact() -> None:
    assert embedding_inputs("a") == ["a"]
    assert embedding_inputs([1, 2]) == [[1, 2]]
    assert embedding_inputs([[1, 2], [3]]) == [[1, 2], [3]]
    assert expected_embedding_tokens("one two three") == 3
    assert expected_embedding_tokens(["one two", "three", "   "]) == 4
    assert expected_embedding_tokens([7, 8, 9]) == 3
    assert expected_embedding_tokens([[7, 8], [9]]) == 3
    assert expected_embedding_usage("a b") == {"prompt_tokens": 2, "total_tokens": 2}

    vector = embedding_vector("hello", EMBEDDING_MODEL)
    assert len(vector) == DEFAULT_EMBEDDING_DIMENSIONS == 8
    assert vector == embedding_vector("hello", EMBEDDING_MODEL)
    assert vector != embedding_vector("hello!", EMBEDDING_MODEL)
    assert vector != embedding_vector("hello", "text-embedding-3-large")
    assert vector != embedding_vector([1], EMBEDDING_MODEL)
    assert all(-1 <= value < 1 for value in vector)
    # Fewer dimensions give a prefix of the longer vector.
    assert embedding_vector("hello", EMBEDDING_MODEL, 20)[:8] == vector
    # float32-exact: base64 round trips, as the SDK decodes it, lose nothing.
    encoded = encode_embedding(vector)
    assert decode_embedding(encoded) == vector
    assert array.array("f", base64.b64decode(encoded)).tolist() == vector
    assert expected_embeddings(["a", "b"], EMBEDDING_MODEL) == [
        embedding_vector("a", EMBEDDING_MODEL),
        embedding_vector("b", EMBEDDING_MODEL),
    ]


def test_embeddings_float_response_shape(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    body = embedding_body()

    response = http.post(fake.url() + EMBEDDINGS, json=body)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert set(data) == {"object", "data", "model", "usage"}
    assert data["object"] == "list"
    assert data["model"] == EMBEDDING_MODEL
    vectors = expected_embeddings(body["input"], EMBEDDING_MODEL)
    assert data["data"] == [
        {"object": "embedding", "index": index, "embedding": vector}
        for index, vector in enumerate(vectors)
    ]
    assert data["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    explicit = http.post(
        fake.url() + EMBEDDINGS, json=embedding_body(encoding_format="float")
    )
    assert explicit.json() == data


def test_embeddings_base64_is_little_endian_float32(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    body = embedding_body(encoding_format="base64")

    data = http.post(fake.url() + EMBEDDINGS, json=body).json()

    vectors = expected_embeddings(body["input"], EMBEDDING_MODEL)
    for item, vector in zip(data["data"], vectors, strict=True):
        assert isinstance(item["embedding"], str)
        assert item["embedding"] == encode_embedding(vector)
        raw = base64.b64decode(item["embedding"])
        assert len(raw) == 4 * DEFAULT_EMBEDDING_DIMENSIONS
        floats = array.array("f")
        floats.frombytes(raw)
        assert floats.tolist() == vector
    assert data["usage"] == expected_embedding_usage(body["input"])


@pytest.mark.parametrize(
    ("value", "vectors", "tokens"),
    [
        ("The quick brown fox", 1, 4),
        (["one", "two words", "three more words"], 3, 6),
        ([101, 102, 103, 104, 105], 1, 5),
        ([[101, 102], [103], [104, 105, 106]], 3, 6),
    ],
)
def test_embeddings_accept_every_input_form(
    fake: FakeUpstream,
    http: httpx.Client,
    value: Any,
    vectors: int,
    tokens: int,
) -> None:
    data = http.post(
        fake.url() + EMBEDDINGS, json=embedding_body(input=value, dimensions=3)
    ).json()

    assert [item["index"] for item in data["data"]] == list(range(vectors))
    assert all(len(item["embedding"]) == 3 for item in data["data"])
    assert [item["embedding"] for item in data["data"]] == expected_embeddings(
        value, EMBEDDING_MODEL, 3
    )
    assert data["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


def test_embeddings_ignore_stream(fake: FakeUpstream, http: httpx.Client) -> None:
    response = http.post(fake.url() + EMBEDDINGS, json=embedding_body(stream=True))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["object"] == "list"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "hi"}, "model"),
        ({"model": EMBEDDING_MODEL}, "input"),
        (embedding_body(input=None), "input"),
        (embedding_body(input=""), "input"),
        (embedding_body(input=[]), "input"),
        (embedding_body(input=["ok", ""]), "input[1]"),
        (embedding_body(input=42), "input"),
        (embedding_body(input=[1, "a"]), "input"),
        (embedding_body(input=[-1]), "input"),
        (embedding_body(input=["x"] * 2049), "input"),
        (embedding_body(input="word " * 8193), "input"),
        (embedding_body(encoding_format="int8"), "encoding_format"),
        (embedding_body(dimensions=0), "dimensions"),
        (embedding_body(dimensions=3073), "dimensions"),
        (embedding_body(dimensions="8"), "dimensions"),
        (
            embedding_body(model="text-embedding-ada-002", dimensions=8),
            "dimensions",
        ),
    ],
)
def test_invalid_embedding_requests_get_400_with_param(
    fake: FakeUpstream, http: httpx.Client, body: dict[str, Any], param: str
) -> None:
    response = http.post(fake.url() + EMBEDDINGS, json=body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"


# -- knobs and routing shared by every route -------------------------------


@pytest.mark.parametrize(
    ("route", "body"),
    [(COMPLETIONS, text_body()), (EMBEDDINGS, embedding_body())],
)
def test_knobs_apply_to_every_post_route(
    fake: FakeUpstream, http: httpx.Client, route: str, body: dict[str, Any]
) -> None:
    fake.scenario("broken", status=429)
    fake.scenario("auth", require_key="sk-good")
    fake.scenario("slow", latency=0.2)
    fake.scenario("crash", drop_after_chunks=0)

    broken = http.post(fake.url("broken") + route, json=body)
    assert broken.status_code == 429
    assert broken.json()["error"]["code"] == "rate_limit_exceeded"
    assert broken.headers["retry-after"] == "1"

    assert http.post(fake.url("auth") + route, json=body).status_code == 401
    good = http.post(
        fake.url("auth") + route, json=body, headers={"Authorization": "Bearer sk-good"}
    )
    assert good.status_code == 200

    started = time.monotonic()
    assert http.post(fake.url("slow") + route, json=body).status_code == 200
    assert time.monotonic() - started >= 0.2

    with pytest.raises(httpx.RemoteProtocolError):
        http.post(fake.url("crash") + route, json=body)

    # A 400 is the fake's own verdict, given before any failure knob applies.
    assert http.post(fake.url("broken") + route, json={}).status_code == 400
    assert [r.path for r in fake.requests_for("broken")] == [f"/s/broken/v1{route}"] * 2


def test_new_routes_are_post_only_and_recorded(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    assert http.get(fake.url() + COMPLETIONS).status_code == 404
    assert http.get(fake.url() + EMBEDDINGS).status_code == 404
    http.post(fake.url() + EMBEDDINGS, json=embedding_body(encoding_format="base64"))

    sent = fake.last_request
    assert sent.path == "/v1/embeddings"
    assert sent.body == embedding_body(encoding_format="base64")


@pytest.mark.parametrize(
    ("route", "body", "kind"),
    [
        ("completions", {"prompt": PROMPT}, "text_completion"),
        ("embeddings", {"input": "hello"}, "list"),
        ("chat/completions", {"messages": MESSAGES}, "chat.completion"),
    ],
)
def test_azure_deployment_routes(
    fake: FakeUpstream,
    http: httpx.Client,
    route: str,
    body: dict[str, Any],
    kind: str,
) -> None:
    url = f"{fake.base_url}/openai/deployments/prod-model/{route}"

    ok = http.post(
        url, params={"api-version": "2024-10-21"}, json=body, headers={"api-key": "k"}
    )
    no_version = http.post(url, json=body, headers={"api-key": "k"})
    no_key = http.post(url, params={"api-version": "2024-10-21"}, json=body)

    assert ok.status_code == 200
    assert ok.json()["object"] == kind
    assert ok.json()["model"] == "prod-model"
    assert no_version.status_code == 404
    assert no_key.status_code == 401


# -- image generation -------------------------------------------------------

IMAGES = "/images/generations"


def image_body(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-image-1", "prompt": "A lighthouse at dusk", **extra}


def test_gpt_image_answers_b64_png_with_token_usage(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    body = image_body(n=2, quality="high", size="1024x1536")

    response = http.post(fake.url() + IMAGES, json=body)

    assert response.status_code == 200, response.text
    data = response.json()
    assert isinstance(data["created"], int)
    assert [base64.b64decode(item["b64_json"]) for item in data["data"]] == [
        FAKE_PNG
    ] * 2
    assert FAKE_PNG.startswith(b"\x89PNG\r\n\x1a\n")
    assert (data["quality"], data["size"], data["output_format"]) == (
        "high",
        "1024x1536",
        "png",
    )
    # 4 prompt words; 2 images of 6240 tokens, OpenAI's high 1024x1536 figure.
    assert data["usage"] == {
        "input_tokens": 4,
        "input_tokens_details": {"text_tokens": 4, "image_tokens": 0},
        "output_tokens": 2 * 6240,
        "total_tokens": 4 + 2 * 6240,
    }
    assert data["usage"] == expected_image_usage(
        "A lighthouse at dusk", n=2, quality="high", size="1024x1536"
    )


@pytest.mark.parametrize(
    ("quality", "size", "tokens"),
    [
        ("low", "1024x1024", 272),
        ("low", "1024x1536", 408),
        ("low", "1536x1024", 400),
        ("medium", "1024x1024", 1056),
        ("medium", "1024x1536", 1584),
        ("medium", "1536x1024", 1568),
        ("high", "1024x1024", 4160),
        ("high", "1024x1536", 6240),
        ("high", "1536x1024", 6208),
        # What the fake makes of auto.
        ("auto", "auto", 1056),
        (None, None, 1056),
    ],
)
def test_gpt_image_output_tokens_follow_the_published_table(
    quality: str | None, size: str | None, tokens: int
) -> None:
    usage = expected_image_usage("one", quality=quality, size=size, n=3)
    assert usage["output_tokens"] == 3 * tokens
    if quality not in (None, "auto"):
        assert IMAGE_OUTPUT_TOKENS[quality][size] == tokens


def test_image_input_tokens_and_missing_usage_are_knobs(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.scenario("edit", image_input_tokens=323)
    fake.scenario("vendor", image_usage=False)

    usage = http.post(fake.url("edit") + IMAGES, json=image_body()).json()["usage"]
    bare = http.post(fake.url("vendor") + IMAGES, json=image_body()).json()

    assert usage["input_tokens_details"] == {"text_tokens": 4, "image_tokens": 323}
    assert usage["input_tokens"] == 327
    assert usage["total_tokens"] == 327 + 1056
    assert "usage" not in bare
    assert len(bare["data"]) == 1


def test_dall_e_3_answers_a_url_and_revised_prompt_without_usage(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    body = image_body(model="dall-e-3", quality="hd", size="1792x1024")

    as_url = http.post(fake.url() + IMAGES, json=body).json()
    as_b64 = http.post(
        fake.url() + IMAGES, json={**body, "response_format": "b64_json"}
    ).json()

    assert set(as_url) == {"created", "data"}
    [image] = as_url["data"]
    assert image["url"].startswith("https://") and image["url"].endswith(".png")
    assert image["revised_prompt"] == "A detailed image of: A lighthouse at dusk"
    [image] = as_b64["data"]
    assert base64.b64decode(image["b64_json"]) == FAKE_PNG
    assert "url" not in image
    assert "usage" not in as_b64


def test_dall_e_2_makes_n_images_without_revising_the_prompt(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    body = {"prompt": "A cat", "n": 3, "size": "256x256"}

    data = http.post(fake.url() + IMAGES, json=body).json()

    # No model is the API's old default, DALL·E 2.
    assert len(data["data"]) == 3
    assert all(set(image) == {"url"} for image in data["data"])
    assert image_family("my-dall-e-2-deployment") == "dall-e-2"
    assert image_family("prod-images") == "gpt-image"


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": "gpt-image-1"}, "prompt", "missing_required_parameter"),
        (image_body(prompt=""), "prompt", "empty_string"),
        (image_body(prompt=7), "prompt", "invalid_type"),
        (image_body(model="dall-e-2", prompt="x" * 1001), "prompt", None),
        (image_body(n=0), "n", "integer_below_min_value"),
        (image_body(n=11), "n", "integer_above_max_value"),
        (image_body(model="dall-e-3", n=2), "n", None),
        (image_body(size="1792x1024"), "size", "invalid_value"),
        (image_body(model="dall-e-3", size="1536x1024"), "size", "invalid_value"),
        (image_body(model="dall-e-2", size="1024x1792"), "size", "invalid_value"),
        (image_body(quality="hd"), "quality", "invalid_value"),
        (image_body(model="dall-e-3", quality="high"), "quality", "invalid_value"),
        (image_body(model="dall-e-2", quality="hd"), "quality", "invalid_value"),
        (image_body(response_format="url"), "response_format", "unknown_parameter"),
        (image_body(model="dall-e-2", style="vivid"), "style", "unknown_parameter"),
        (image_body(model="dall-e-3", style="moody"), "style", "invalid_value"),
        (image_body(stream=True), "stream", None),
    ],
)
def test_image_requests_are_validated_per_model_family(
    fake: FakeUpstream,
    http: httpx.Client,
    body: dict[str, Any],
    param: str,
    code: str | None,
) -> None:
    response = http.post(fake.url() + IMAGES, json=body)

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code


def test_valid_image_sizes_and_qualities_per_family(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    for family, model in [
        ("gpt-image", "gpt-image-1"),
        ("dall-e-3", "dall-e-3"),
        ("dall-e-2", "dall-e-2"),
    ]:
        for size in (*IMAGE_SIZES[family], "auto"):
            for quality in (*IMAGE_QUALITIES[family], "auto"):
                body = image_body(model=model, size=size, quality=quality)
                response = http.post(fake.url() + IMAGES, json=body)
                assert response.status_code == 200, (body, response.text)


def test_azure_deployment_generates_images(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    url = f"{fake.base_url}/openai/deployments/images-prod/images/generations"

    response = http.post(
        url,
        params={"api-version": "2025-04-01-preview"},
        json={"prompt": "A fox", "model": "images-prod", "quality": "low"},
        headers={"api-key": "k"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["usage"]["output_tokens"] == 272
