"""The Anthropic adapter: OpenAI chat payloads to Messages API and back."""

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.pricing import TokenUsage
from relay import errors, upstream
from relay.providers.anthropic import (
    DEFAULT_MAX_TOKENS,
    AnthropicAdapter,
    AnthropicStream,
)
from tests import factories
from tests.fakes.anthropic import (
    DEFAULT_REPLY,
    TOOL_INPUT,
    TOOL_TOKENS,
    FakeAnthropic,
    input_tokens,
)

adapter = AnthropicAdapter()


def channel(base_url="https://api.anthropic.com", api_key="sk-ant-secret"):
    return factories.channel_info("anthropic", "claude", base_url, api_key)


def translated(payload: dict, *, stream: bool = False) -> dict:
    request = adapter.chat_request(channel(), payload, stream=stream)
    return orjson.loads(request.content)


def chat(*messages, **fields) -> dict:
    return {"model": "claude-sonnet-4-5", "messages": list(messages), **fields}


def user(content):
    return {"role": "user", "content": content}


WEATHER_TOOL = factories.function_tool(
    "get_weather", "Current weather in a city.", city={"type": "string"}
)


# -- request ---------------------------------------------------------------


def test_it_posts_to_the_messages_endpoint_with_anthropic_headers():
    request = adapter.chat_request(channel(), chat(user("Hi")), stream=False)
    assert request.method == "POST"
    assert str(request.url) == "https://api.anthropic.com/v1/messages"
    assert request.headers["x-api-key"] == "sk-ant-secret"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers


@pytest.mark.parametrize(
    "base_url", ["https://api.anthropic.com/v1", "https://api.anthropic.com/v1/"]
)
def test_it_forgives_a_base_url_ending_in_v1(base_url):
    request = adapter.chat_request(channel(base_url), chat(user("Hi")), stream=True)
    assert str(request.url) == "https://api.anthropic.com/v1/messages"
    assert request.headers["accept"] == "text/event-stream"


def test_system_and_developer_messages_become_the_system_prompt():
    body = translated(
        chat(
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use SI."}]},
            user("Hi"),
        )
    )
    assert body["system"] == "Be brief.\n\nUse SI."
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]}
    ]


def test_consecutive_turns_of_one_role_are_merged():
    body = translated(
        chat(
            user("One"),
            user([{"type": "text", "text": "Two"}]),
            {"role": "assistant", "content": "Three"},
            {"role": "assistant", "content": ""},
            {"role": "assistant", "content": "Four"},
            user("Five"),
        )
    )
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert [[b["text"] for b in m["content"]] for m in body["messages"]] == [
        ["One", "Two"],
        ["Three", "Four"],
        ["Five"],
    ]


def test_images_become_base64_or_url_sources():
    body = translated(
        chat(
            user(
                [
                    {"type": "text", "text": "Compare"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0K"},
                    },
                    {
                        "type": "image_url",
                        "image_url": {
                            "url": "https://example.com/cat.jpg",
                            "detail": "high",
                        },
                    },
                ]
            )
        )
    )
    assert body["messages"][0]["content"][1:] == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"},
        },
        {
            "type": "image",
            "source": {"type": "url", "url": "https://example.com/cat.jpg"},
        },
    ]


def test_pdf_files_become_documents_and_cache_marks_are_kept():
    body = translated(
        chat(
            {
                "role": "system",
                "content": [
                    {
                        "type": "text",
                        "text": "Long rules.",
                        "cache_control": {"type": "ephemeral"},
                    }
                ],
            },
            user(
                [
                    {
                        "type": "file",
                        "file": {"file_data": "data:application/pdf;base64,JVBER"},
                    },
                    {"type": "image_url", "image_url": "data:image/svg+xml,%3Csvg%3E"},
                ]
            ),
        )
    )
    # With a cache mark the system prompt must stay a list of blocks.
    assert body["system"] == [
        {"type": "text", "text": "Long rules.", "cache_control": {"type": "ephemeral"}}
    ]
    assert body["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {
                "type": "base64",
                "media_type": "application/pdf",
                "data": "JVBER",
            },
        },
        {
            "type": "image",
            "source": {
                "type": "base64",
                "media_type": "image/svg+xml",
                "data": "PHN2Zz4=",
            },
        },
    ]


@pytest.mark.parametrize(
    "junk",
    [
        {"role": "assistant", "content": None, "tool_calls": ["call_1"]},
        {"role": "assistant", "content": 7, "tool_calls": {"id": "x"}},
        {"role": "function", "name": "f", "content": "legacy"},
        "not a message",
    ],
)
def test_malformed_messages_are_dropped_rather_than_crashing(junk):
    body = translated(
        chat(
            user("Hi"),
            junk,
            tools=[{"type": "function", "function": "f"}],
            tool_choice={"type": "function", "function": "f"},
        )
    )
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]}
    ]
    assert "tools" not in body


def test_tool_calls_and_results_become_tool_use_and_tool_result_blocks():
    body = translated(
        chat(
            user("Weather in Paris and Rome?"),
            factories.assistant_calls(
                None,
                factories.tool_call("call_1", "get_weather", '{"city":"Paris"}'),
                factories.tool_call("call_2", "get_weather", '{"city":"Rome"}'),
            ),
            factories.tool_message("call_1", "18C"),
            {
                "role": "tool",
                "tool_call_id": "call_2",
                "content": [{"type": "text", "text": "24C"}],
            },
            user("Thanks"),
        )
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [
            {
                "type": "tool_use",
                "id": "call_1",
                "name": "get_weather",
                "input": {"city": "Paris"},
            },
            {
                "type": "tool_use",
                "id": "call_2",
                "name": "get_weather",
                "input": {"city": "Rome"},
            },
        ],
    }
    # Both results and the next question form one user turn, results first.
    assert body["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
            {
                "type": "tool_result",
                "tool_use_id": "call_2",
                "content": [{"type": "text", "text": "24C"}],
            },
            {"type": "text", "text": "Thanks"},
        ],
    }
    assert len(body["messages"]) == 3


def test_tools_are_declared_with_their_input_schema():
    body = translated(chat(user("Hi"), tools=[WEATHER_TOOL]))
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        }
    ]
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ],
)
def test_tool_choice_is_translated(choice, parallel, expected):
    payload = chat(user("Hi"), tools=[WEATHER_TOOL], tool_choice=choice)
    if parallel is not None:
        payload["parallel_tool_calls"] = parallel
    assert translated(payload)["tool_choice"] == expected


@pytest.mark.parametrize(
    ("stop", "expected"),
    [("END", ["END"]), (["a", "b"], ["a", "b"]), (["\n", "x"], ["x"])],
)
def test_stop_becomes_stop_sequences(stop, expected):
    assert translated(chat(user("Hi"), stop=stop))["stop_sequences"] == expected


def test_max_tokens_has_a_default_because_anthropic_requires_it():
    assert translated(chat(user("Hi")))["max_tokens"] == DEFAULT_MAX_TOKENS
    assert translated(chat(user("Hi"), max_tokens=50))["max_tokens"] == 50
    newer = chat(user("Hi"), max_tokens=50, max_completion_tokens=70)
    assert translated(newer)["max_tokens"] == 70


def test_it_sends_only_fields_anthropic_knows():
    body = translated(
        chat(
            user("Hi"),
            temperature=1.7,
            top_p=0.9,
            user="customer-42",
            n=1,
            stream=True,
            stream_options={"include_usage": True},
            response_format={"type": "json_object"},
            logprobs=True,
            presence_penalty=0.5,
            seed=7,
        ),
        stream=True,
    )
    assert body == {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "max_tokens": DEFAULT_MAX_TOKENS,
        # OpenAI's scale goes to 2, Anthropic's to 1.
        "temperature": 1.0,
        "top_p": 0.9,
        "metadata": {"user_id": "customer-42"},
        "stream": True,
    }


# -- response --------------------------------------------------------------


def anthropic_message(content, stop_reason="end_turn", **usage) -> bytes:
    return orjson.dumps(
        {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
        }
    )


def test_a_text_answer_becomes_a_chat_completion():
    raw = anthropic_message(
        [{"type": "text", "text": "Hello"}, {"type": "text", "text": " there"}]
    )
    body, usage = adapter.chat_response(raw)
    body = orjson.loads(body)
    assert body["id"] == "chatcmpl-msg_01"
    assert body["object"] == "chat.completion"
    assert body["model"] == "claude-sonnet-4-5"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello there", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert body["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    assert usage == TokenUsage(prompt=10, completion=5)


def test_tool_use_blocks_become_tool_calls():
    raw = anthropic_message(
        [
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "get_weather",
                "input": {"city": "Paris"},
            }
        ],
        stop_reason="tool_use",
    )
    body = orjson.loads(adapter.chat_response(raw)[0])
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        factories.tool_call("toolu_1", "get_weather", '{"city":"Paris"}')
    ]


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reasons_map_to_finish_reasons(stop_reason, finish):
    raw = anthropic_message([{"type": "text", "text": "x"}], stop_reason=stop_reason)
    body = orjson.loads(adapter.chat_response(raw)[0])
    assert body["choices"][0]["finish_reason"] == finish


def test_cache_buckets_count_as_prompt_tokens():
    raw = anthropic_message(
        [{"type": "text", "text": "x"}],
        cache_read_input_tokens=300,
        cache_creation_input_tokens=40,
    )
    body, usage = adapter.chat_response(raw)
    assert usage == TokenUsage(prompt=350, cached=300, completion=5, cache_write=40)
    assert orjson.loads(body)["usage"] == {
        "prompt_tokens": 350,
        "completion_tokens": 5,
        "total_tokens": 355,
        # Cache writes are shown, so the charge reconciles from the answer.
        "prompt_tokens_details": {"cached_tokens": 300, "cache_write_tokens": 40},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


# -- stream ----------------------------------------------------------------


def event(kind: str, **fields) -> bytes:
    payload = orjson.dumps({"type": kind, **fields})
    return b"event: " + kind.encode() + b"\ndata: " + payload + b"\n\n"


def text_delta(index, text):
    return event(
        "content_block_delta", index=index, delta={"type": "text_delta", "text": text}
    )


def json_delta(index, fragment):
    delta = {"type": "input_json_delta", "partial_json": fragment}
    return event("content_block_delta", index=index, delta=delta)


START = event(
    "message_start",
    message={
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "cache_read_input_tokens": 20,
            "cache_creation_input_tokens": 5,
            "output_tokens": 1,
        },
    },
)
STREAM = (
    START
    + event("content_block_start", index=0, content_block={"type": "text", "text": ""})
    + event("ping")
    + text_delta(0, "Hel")
    + text_delta(0, "lo")
    + event("content_block_stop", index=0)
    + event(
        "content_block_start",
        index=1,
        content_block={"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
    )
    + json_delta(1, "")
    + json_delta(1, '{"city":')
    + json_delta(1, ' "Paris"}')
    + event("content_block_stop", index=1)
    + event(
        "message_delta",
        delta={"stop_reason": "tool_use", "stop_sequence": None},
        usage={"output_tokens": 7},
    )
    + event("message_stop")
)
STREAM_USAGE = TokenUsage(prompt=35, cached=20, completion=7, cache_write=5)


def chunks(out: bytes) -> list[dict]:
    """Parse OpenAI SSE output, leaving out the clock-dependent `created`."""
    events = [e for e in out.split(b"\n\n") if e]
    assert all(e.startswith(b"data: ") for e in events)
    parsed = [orjson.loads(e[6:]) for e in events]
    for chunk in parsed:
        chunk.pop("created", None)
    return parsed


def deltas(parsed: list[dict]) -> list[tuple]:
    return [
        (c["choices"][0]["delta"], c["choices"][0]["finish_reason"])
        for c in parsed
        if c.get("choices")
    ]


def settled(stream) -> bytes:
    """What the relay sends once the request is settled, before [DONE]: the
    usage chunk, when the client asked for usage."""
    return stream.close(stream.usage).removesuffix(b"data: [DONE]\n\n")


def test_a_stream_becomes_chat_completion_chunks():
    stream = AnthropicStream(forward_usage=True)
    parsed = chunks(stream.feed(STREAM) + settled(stream))
    assert {c["id"] for c in parsed} == {"chatcmpl-msg_01"}
    assert {c["object"] for c in parsed} == {"chat.completion.chunk"}
    assert {c["model"] for c in parsed} == {"claude-sonnet-4-5"}
    assert deltas(parsed) == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Hel"}, None),
        ({"content": "lo"}, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                ]
            },
            None,
        ),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": ' "Paris"}'}}]}, None),
        ({}, "tool_calls"),
    ]
    assert parsed[-1]["choices"] == []
    assert parsed[-1]["usage"] == {
        "prompt_tokens": 35,
        "completion_tokens": 7,
        "total_tokens": 42,
        "prompt_tokens_details": {"cached_tokens": 20, "cache_write_tokens": 5},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    assert stream.done
    assert stream.usage == STREAM_USAGE
    assert "".join(stream.text) == 'Hello{"city": "Paris"}'
    assert stream.closing == b"data: [DONE]\n\n"


def test_the_usage_chunk_is_sent_only_when_the_client_asked():
    stream = AnthropicStream(forward_usage=False)
    out = stream.feed(STREAM)
    assert b"prompt_tokens" not in out
    assert b"[DONE]" not in out
    assert stream.usage == STREAM_USAGE


def test_a_stream_fed_byte_by_byte_says_the_same():
    whole = chunks(AnthropicStream(forward_usage=True).feed(STREAM))
    stream = AnthropicStream(forward_usage=True)
    out = b"".join(stream.feed(STREAM[i : i + 1]) for i in range(len(STREAM)))
    assert chunks(out) == whole
    assert stream.done
    assert stream.usage == STREAM_USAGE


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=15))
def test_a_stream_split_anywhere_says_the_same(cuts):
    whole = chunks(AnthropicStream(forward_usage=True).feed(STREAM))
    stream = AnthropicStream(forward_usage=True)
    out, start = [], 0
    for cut in [*sorted(set(cuts)), len(STREAM)]:
        out.append(stream.feed(STREAM[start:cut]))
        start = cut
    assert chunks(b"".join(out)) == whole
    assert stream.done


def test_crlf_framing_is_understood():
    stream = AnthropicStream(forward_usage=False)
    parsed = chunks(stream.feed(STREAM.replace(b"\n", b"\r\n")))
    assert len(parsed) == 7
    assert stream.done


def test_it_is_not_done_before_message_stop():
    stream = AnthropicStream(forward_usage=True)
    stream.feed(STREAM[: STREAM.index(b"event: message_stop")])
    assert not stream.done
    # message_delta has the final output count: usage is known already.
    assert stream.usage == STREAM_USAGE


def test_a_cut_stream_leaves_usage_unknown_and_keeps_the_text():
    stream = AnthropicStream(forward_usage=True)
    stream.feed(START + text_delta(0, "Partial"))
    assert stream.usage is None
    assert stream.text == ["Partial"]
    assert not stream.done


def test_message_delta_counts_replace_message_starts():
    # Newer API versions repeat the (cumulative) input figures at the end.
    stream = AnthropicStream(forward_usage=False)
    stream.feed(
        START
        + event(
            "message_delta",
            delta={"stop_reason": "max_tokens"},
            usage={
                "input_tokens": 12,
                "cache_read_input_tokens": 20,
                "cache_creation_input_tokens": None,
                "output_tokens": 9,
            },
        )
    )
    assert stream.usage == TokenUsage(prompt=37, cached=20, completion=9, cache_write=5)


def test_thinking_is_not_shown_but_counts_as_text_produced():
    stream = AnthropicStream(forward_usage=False)
    opened = {"type": "thinking", "thinking": ""}
    thought = {"type": "thinking_delta", "thinking": "Hmm."}
    out = stream.feed(
        START
        + event("content_block_start", index=0, content_block=opened)
        + event("content_block_delta", index=0, delta=thought)
        + event("content_block_delta", index=0, delta={"type": "signature_delta"})
    )
    assert b"Hmm." not in out
    assert stream.text == ["Hmm."]


def test_an_error_event_becomes_an_openai_error_and_is_not_done():
    stream = AnthropicStream(forward_usage=True)
    error = {"type": "overloaded_error", "message": "Overloaded"}
    out = stream.feed(START + text_delta(0, "Hi") + event("error", error=error))
    assert chunks(out)[-1] == {
        "error": {
            "message": "Overloaded",
            "type": "overloaded_error",
            "param": None,
            "code": None,
        }
    }
    assert not stream.done


def test_it_ignores_what_follows_message_stop():
    stream = AnthropicStream(forward_usage=False)
    out = stream.feed(STREAM + text_delta(0, "late"))
    assert b"late" not in out


# -- against the fake, over HTTP ---------------------------------------------


@pytest.fixture(scope="module")
def anthropic_server():
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def claude(anthropic_server):
    anthropic_server.reset()
    yield anthropic_server
    anthropic_server.reset()


def send(request: httpx.Request, *, stream: bool = False) -> httpx.Response:
    with httpx.Client() as client:
        response = client.send(request, stream=stream)
        if not stream:
            return response
        response.read()
        return response


def test_the_fake_accepts_a_translated_conversation_and_answers(claude):
    payload = chat(
        {"role": "system", "content": "Be brief."},
        user("Weather in Paris?"),
        factories.assistant_calls(
            "Checking.",
            factories.tool_call("toolu_a", "get_weather", '{"city":"Paris"}'),
        ),
        factories.tool_message("toolu_a", "18C and sunny"),
        user("And tomorrow?"),
        tools=[WEATHER_TOOL],
        stream_options={"include_usage": True},
    )
    claude.configure(cache_read=4, cache_creation=2)
    ch = channel(claude.base_url + "/v1", api_key="sk-ant-fake")
    response = send(adapter.chat_request(ch, payload, stream=False))
    assert response.status_code == 200, response.text
    recorded = claude.last_request
    assert recorded.path == "/v1/messages"
    assert recorded.api_key == "sk-ant-fake"
    assert recorded.headers["anthropic-version"] == "2023-06-01"

    body, usage = adapter.chat_response(response.content)
    body = orjson.loads(body)
    assert body["choices"][0]["message"]["content"] == DEFAULT_REPLY
    assert body["choices"][0]["finish_reason"] == "stop"
    total = input_tokens(recorded.body)
    assert usage == TokenUsage(prompt=total, cached=4, completion=6, cache_write=2)
    assert body["usage"]["prompt_tokens"] == total


def test_a_streamed_answer_from_the_fake_translates_exactly(claude):
    payload = chat(user("Hi"), stream=True, max_tokens=3)
    request = adapter.chat_request(channel(claude.base_url), payload, stream=True)
    stream = adapter.chat_stream(forward_usage=True)
    with (
        httpx.Client() as client,
        client.stream(
            request.method,
            request.url,
            headers=request.headers,
            content=request.content,
        ) as response,
    ):
        assert response.status_code == 200
        # Small reads split events, as networks do.
        out = b"".join(stream.feed(data) for data in response.iter_raw(chunk_size=7))
    parsed = chunks(out + settled(stream))
    text = "".join(d.get("content") or "" for d, _ in deltas(parsed))
    assert text == "Hello! This is "
    assert deltas(parsed)[-1] == ({}, "length")
    assert stream.done
    total = input_tokens(claude.last_request.body)
    assert stream.usage == TokenUsage(prompt=total, completion=3)
    assert parsed[-1]["usage"]["total_tokens"] == total + 3


def test_a_tool_use_answer_streams_as_tool_call_deltas(claude):
    claude.configure(tool_use=True, reply="Let me check.")
    payload = chat(user("Weather?"), tools=[WEATHER_TOOL], tool_choice="required")
    request = adapter.chat_request(channel(claude.base_url), payload, stream=True)
    stream = adapter.chat_stream(forward_usage=False)
    out = stream.feed(send(request, stream=True).content)
    assert claude.last_request.body["tool_choice"] == {"type": "any"}
    calls = [d["tool_calls"][0] for d, _ in deltas(chunks(out)) if "tool_calls" in d]
    assert calls[0]["id"].startswith("toolu_")
    assert calls[0]["function"]["name"] == "get_weather"
    arguments = "".join(c["function"]["arguments"] for c in calls)
    assert orjson.loads(arguments) == TOOL_INPUT
    assert deltas(chunks(out))[-1] == ({}, "tool_calls")
    assert stream.usage.completion == 3 + TOOL_TOKENS


def test_a_tool_use_answer_becomes_tool_calls(claude):
    claude.configure(tool_use=True, reply="")
    payload = chat(user("Weather?"), tools=[WEATHER_TOOL])
    response = send(
        adapter.chat_request(channel(claude.base_url), payload, stream=False)
    )
    message = orjson.loads(adapter.chat_response(response.content)[0])["choices"][0]
    assert message["finish_reason"] == "tool_calls"
    call = message["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == TOOL_INPUT


def test_a_stop_sequence_from_the_fake_maps_to_stop(claude):
    payload = chat(user("Hi"), stop=["fake"])
    response = send(
        adapter.chat_request(channel(claude.base_url), payload, stream=False)
    )
    body = orjson.loads(adapter.chat_response(response.content)[0])
    assert body["choices"][0]["message"]["content"] == "Hello! This is the "
    assert body["choices"][0]["finish_reason"] == "stop"


def test_a_mid_stream_error_reaches_the_client_and_the_stream_is_not_done(claude):
    claude.configure(error_after=2)
    request = adapter.chat_request(
        channel(claude.base_url), chat(user("Hi")), stream=True
    )
    stream = adapter.chat_stream(forward_usage=True)
    parsed = chunks(stream.feed(send(request, stream=True).content))
    assert parsed[-1]["error"]["type"] == "overloaded_error"
    assert not stream.done
    assert stream.text == ["Hello! ", "This "]


def test_an_anthropic_error_reads_as_an_openai_error(claude):
    claude.configure(status=529)
    response = send(
        adapter.chat_request(channel(claude.base_url), chat(user("Hi")), stream=False)
    )
    assert response.status_code == 529
    refusal = errors.from_upstream(
        response.status_code, adapter.error_body(response.content)
    )
    assert refusal.type == "overloaded_error"
    assert refusal.message == "Fake Anthropic error (529)."


@pytest.mark.parametrize(
    ("headers", "body", "status", "message"),
    [
        (
            {},
            {"model": "m", "max_tokens": 5, "messages": [user("Hi")]},
            401,
            "x-api-key",
        ),
        (
            {"x-api-key": "k"},
            {"model": "m", "max_tokens": 5, "messages": [user("Hi")]},
            400,
            "anthropic-version",
        ),
        (
            None,
            {"model": "m", "messages": [user("Hi")]},
            400,
            "max_tokens: Field required",
        ),
        (None, {"model": "m", "max_tokens": 5, "messages": []}, 400, "at least one"),
        (
            None,
            {"model": "m", "max_tokens": 5, "messages": [user("a"), user("b")]},
            400,
            "alternate",
        ),
        (
            None,
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "system", "content": "s"}],
            },
            400,
            "role",
        ),
        (
            None,
            {"model": "m", "max_tokens": 5, "messages": [user("Hi")], "n": 1},
            400,
            "n: Extra inputs are not permitted",
        ),
        (
            None,
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [
                    user(
                        [{"type": "tool_result", "tool_use_id": "nope", "content": "x"}]
                    )
                ],
            },
            400,
            "tool_use_id",
        ),
    ],
)
def test_the_fake_refuses_what_anthropic_refuses(
    claude, headers, body, status, message
):
    if headers is None:
        headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    response = httpx.post(f"{claude.base_url}/v1/messages", headers=headers, json=body)
    assert response.status_code == status
    error = response.json()
    assert error["type"] == "error"
    assert message in error["error"]["message"]


@pytest.mark.asyncio
async def test_it_streams_through_the_relays_own_transport(claude):
    request = adapter.chat_request(
        channel(claude.base_url), chat(user("Hi"), stream=True), stream=True
    )
    stream = adapter.chat_stream(forward_usage=False)
    try:
        response = await upstream.send(request, adapter.transport())
        out = b"".join([stream.feed(data) async for data in response.aiter_raw()])
        await response.aclose()
    finally:
        await upstream.close_transports()
    assert response.status_code == 200
    assert "".join(stream.text) == DEFAULT_REPLY
    assert chunks(out)[-1]["choices"][0]["finish_reason"] == "stop"
    assert stream.done
