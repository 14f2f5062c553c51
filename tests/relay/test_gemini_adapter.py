"""The Gemini adapter: OpenAI chat requests out, generateContent answers back."""

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.pricing import TokenUsage
from relay import upstream
from relay.providers.gemini import SKIP_SIGNATURE, GeminiAdapter, GeminiStream
from tests import factories
from tests.fakes.gemini import DEFAULT_REPLY, THOUGHT_SIGNATURE, FakeGemini

adapter = GeminiAdapter()


def channel(base_url="https://generativelanguage.googleapis.com/v1beta", key="AIza-k"):
    return factories.channel_info("gemini", "gemini", base_url, key)


def gemini_body(payload: dict, *, stream: bool = False) -> dict:
    request = adapter.chat_request(channel(), payload, stream=stream)
    return orjson.loads(request.content)


def chat(*messages, **extra) -> dict:
    return {"model": "gemini-2.5-flash", "messages": list(messages), **extra}


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


# -- requests ------------------------------------------------------------


def test_it_builds_the_generate_content_request():
    request = adapter.chat_request(
        channel(), chat({"role": "user", "content": "Hi"}), stream=False
    )
    assert request.method == "POST"
    assert str(request.url) == (
        "https://generativelanguage.googleapis.com/v1beta/models/"
        "gemini-2.5-flash:generateContent"
    )
    assert request.headers["x-goog-api-key"] == "AIza-k"
    assert "authorization" not in request.headers
    assert orjson.loads(request.content) == {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}]
    }


def test_it_streams_from_stream_generate_content_as_sse():
    payload = chat({"role": "user", "content": "Hi"}, model="models/gemini-2.5-pro")
    request = adapter.chat_request(channel(), payload, stream=True)
    assert request.url.path.endswith("/models/gemini-2.5-pro:streamGenerateContent")
    assert request.url.params["alt"] == "sse"
    assert request.headers["accept"] == "text/event-stream"


def test_system_and_developer_messages_become_the_system_instruction():
    body = gemini_body(
        chat(
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Hi"},
            {"role": "developer", "content": [{"type": "text", "text": "No emoji."}]},
        )
    )
    assert body["systemInstruction"] == {
        "parts": [{"text": "Be terse."}, {"text": "No emoji."}]
    }
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]


def test_roles_map_and_consecutive_turns_merge():
    body = gemini_body(
        chat(
            {"role": "user", "content": "One"},
            {"role": "user", "content": [{"type": "text", "text": "Two"}]},
            {"role": "assistant", "content": "Three"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "Four"},
        )
    )
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "One"}, {"text": "Two"}]},
        {"role": "model", "parts": [{"text": "Three"}]},
        {"role": "user", "parts": [{"text": "Four"}]},
    ]


def test_images_go_inline_or_by_reference():
    content = [
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}},
        {"type": "image_url", "image_url": {"url": "https://x.test/a/cat.webp?s=1"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/render"}},
        {"type": "image_url", "image_url": {"url": "data:text/plain,hi%21"}},
    ]
    parts = gemini_body(chat({"role": "user", "content": content}))["contents"][0]
    assert parts["parts"] == [
        {"text": "Compare"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw=="}},
        {
            "fileData": {
                "mimeType": "image/webp",
                "fileUri": "https://x.test/a/cat.webp?s=1",
            }
        },
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/render"}},
        {"inlineData": {"mimeType": "text/plain", "data": "aGkh"}},
    ]


def test_tools_become_function_declarations():
    body = gemini_body(chat({"role": "user", "content": "Hi"}, tools=[WEATHER_TOOL]))
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city.",
                    "parametersJsonSchema": WEATHER_TOOL["function"]["parameters"],
                }
            ]
        }
    ]
    assert "toolConfig" not in body


@pytest.mark.parametrize(
    ("tool_choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice_becomes_the_function_calling_mode(tool_choice, config):
    payload = chat(
        {"role": "user", "content": "Hi"}, tools=[WEATHER_TOOL], tool_choice=tool_choice
    )
    assert gemini_body(payload)["toolConfig"] == {"functionCallingConfig": config}


def test_tool_results_find_their_function_names():
    body = gemini_body(
        chat(
            {"role": "user", "content": "Weather in Paris and Oslo?"},
            factories.assistant_calls(
                None,
                factories.tool_call("call_a", "get_weather", '{"city": "Paris"}'),
                factories.tool_call("call_b", "get_time", ""),
            ),
            factories.tool_message("call_b", "12:00"),
            factories.tool_message("call_a", '{"temp": 21}'),
            {"role": "user", "content": "Thanks"},
        )
    )
    model, answers = body["contents"][1:]
    assert model == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                # A history without signatures gets Google's sentinel, once.
                "thoughtSignature": SKIP_SIGNATURE,
            },
            {"functionCall": {"name": "get_time", "args": {}}},
        ],
    }
    assert answers == {
        "role": "user",
        "parts": [
            {
                "functionResponse": {
                    "name": "get_time",
                    "response": {"result": "12:00"},
                }
            },
            {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
            {"text": "Thanks"},
        ],
    }


def test_thought_signatures_come_back_from_extra_content():
    call = {
        "id": "call_a",
        "type": "function",
        "function": {"name": "get_weather", "arguments": "{}"},
        "extra_content": {"google": {"thought_signature": "c2ln"}},
    }
    body = gemini_body(
        chat(
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "tool_calls": [call]},
            factories.tool_message("call_a", "[1, 2]"),
        )
    )
    assert body["contents"][1]["parts"] == [
        {
            "functionCall": {"name": "get_weather", "args": {}},
            "thoughtSignature": "c2ln",
        }
    ]
    assert body["contents"][2]["parts"][0]["functionResponse"]["response"] == {
        "result": [1, 2]
    }


def test_generation_settings_are_renamed_and_openai_only_fields_dropped():
    body = gemini_body(
        chat(
            {"role": "user", "content": "Hi"},
            max_tokens=50,
            max_completion_tokens=40,
            stop="END",
            temperature=0.2,
            top_p=0.9,
            n=2,
            response_format={"type": "json_object"},
            stream_options={"include_usage": True},
            user="u-1",
            logit_bias={"1": 2},
            parallel_tool_calls=False,
            store=True,
        )
    )
    assert set(body) == {"contents", "generationConfig"}
    assert body["generationConfig"] == {
        "maxOutputTokens": 40,
        "stopSequences": ["END"],
        "temperature": 0.2,
        "topP": 0.9,
        "candidateCount": 2,
        "responseMimeType": "application/json",
    }


def test_a_json_schema_response_format_sends_the_schema():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = gemini_body(
        chat(
            {"role": "user", "content": "Hi"},
            max_tokens=7,
            stop=["x", "y"],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "thing", "schema": schema, "strict": True},
            },
        )
    )
    assert body["generationConfig"] == {
        "maxOutputTokens": 7,
        "stopSequences": ["x", "y"],
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }


# -- answers -------------------------------------------------------------

USAGE = {
    "promptTokenCount": 120,
    "candidatesTokenCount": 30,
    "cachedContentTokenCount": 100,
    "thoughtsTokenCount": 45,
    "totalTokenCount": 195,
}


def answer(*candidates, usage=USAGE, **extra) -> bytes:
    body = {
        "candidates": list(candidates),
        "usageMetadata": usage,
        "modelVersion": "gemini-2.5-flash",
        "responseId": "abc123",
        **extra,
    }
    return orjson.dumps({k: v for k, v in body.items() if v is not None})


def candidate(*parts, finish="STOP", index=0) -> dict:
    return {
        "content": {"role": "model", "parts": list(parts)},
        "finishReason": finish,
        "index": index,
    }


def test_an_answer_becomes_a_chat_completion_with_exact_usage():
    raw, usage = adapter.chat_response(
        answer(
            candidate(
                {"text": "Planning...", "thought": True},
                {"text": "Hello, "},
                {"text": "world."},
            )
        )
    )
    body = orjson.loads(raw)
    assert body["id"] == "chatcmpl-abc123"
    assert body["object"] == "chat.completion"
    assert body["model"] == "gemini-2.5-flash"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello, world.",
                "refusal": None,
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert body["usage"] == {
        "prompt_tokens": 120,
        "completion_tokens": 75,
        "total_tokens": 195,
        "prompt_tokens_details": {"cached_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 45},
    }
    # Thinking is billed as output; cached tokens are part of the prompt.
    assert usage == TokenUsage(prompt=120, cached=100, completion=75, reasoning=45)


def test_function_calls_become_tool_calls():
    raw, _ = adapter.chat_response(
        answer(
            candidate(
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
                    "thoughtSignature": "c2ln",
                },
                {"functionCall": {"name": "get_time", "args": {}}},
            )
        )
    )
    choice = orjson.loads(raw)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    first, second = choice["message"]["tool_calls"]
    assert first["id"].startswith("call_") and first["id"] != second["id"]
    assert first["type"] == "function"
    assert first["function"] == {"name": "get_weather", "arguments": '{"city":"Oslo"}'}
    assert first["extra_content"] == {"google": {"thought_signature": "c2ln"}}
    assert second["function"] == {"name": "get_time", "arguments": "{}"}
    assert "extra_content" not in second


@pytest.mark.parametrize(
    ("gemini", "openai"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("OTHER", "stop"),
    ],
)
def test_finish_reasons_are_translated(gemini, openai):
    raw, _ = adapter.chat_response(answer(candidate({"text": "x"}, finish=gemini)))
    assert orjson.loads(raw)["choices"][0]["finish_reason"] == openai


def test_every_candidate_is_a_choice():
    raw, _ = adapter.chat_response(
        answer(candidate({"text": "a"}), candidate({"text": "b"}, index=1))
    )
    choices = orjson.loads(raw)["choices"]
    assert [(c["index"], c["message"]["content"]) for c in choices] == [
        (0, "a"),
        (1, "b"),
    ]


def test_a_blocked_prompt_is_a_content_filter_finish():
    raw, usage = adapter.chat_response(
        answer(
            usage={"promptTokenCount": 9, "totalTokenCount": 9},
            promptFeedback={"blockReason": "SAFETY"},
        )
    )
    body = orjson.loads(raw)
    assert body["choices"][0]["finish_reason"] == "content_filter"
    assert body["choices"][0]["message"]["content"] == ""
    assert usage == TokenUsage(prompt=9)


def test_an_answer_without_usage_reports_none():
    _, usage = adapter.chat_response(answer(candidate({"text": "x"}), usage=None))
    assert usage is None


def test_error_bodies_are_translated_and_bad_keys_blamed_on_the_channel():
    bad_key = orjson.dumps(
        {
            "error": {
                "code": 400,
                "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
                "details": [{"reason": "API_KEY_INVALID"}],
            }
        }
    )
    assert adapter.error_body(bad_key) == {
        "error": {
            "message": "API key not valid. Please pass a valid API key.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_argument",
        }
    }
    assert adapter.channel_fault(400, bad_key)
    too_long = orjson.dumps(
        {"error": {"code": 400, "message": "Too long.", "status": "INVALID_ARGUMENT"}}
    )
    assert not adapter.channel_fault(400, too_long)
    assert not adapter.channel_fault(400, b"<html>")


# -- streams -------------------------------------------------------------


def sse(chunk: dict, newline: bytes = b"\r\n") -> bytes:
    return b"data: " + orjson.dumps(chunk) + newline * 2


def stream_chunk(*parts, finish=None, usage=None) -> dict:
    cand = {"content": {"role": "model", "parts": list(parts)}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    chunk = {"candidates": [cand], "modelVersion": "gemini-2.5-flash"}
    chunk["responseId"] = "r1"
    if usage:
        chunk["usageMetadata"] = usage
    return chunk


EARLY_USAGE = {"promptTokenCount": 120, "totalTokenCount": 120}
STREAM = (
    sse(stream_chunk({"text": "Hel"}, usage=EARLY_USAGE))
    + sse(stream_chunk({"text": "thinking", "thought": True}, usage=EARLY_USAGE))
    + sse(stream_chunk({"text": "lo"}, usage=EARLY_USAGE))
    + sse(stream_chunk({"text": "!"}, finish="STOP", usage=USAGE))
)


def events(out: bytes) -> list:
    """Return the events' JSON, without the clock-dependent `created`."""
    found = []
    for event in out.split(b"\n\n"):
        if event:
            assert event.startswith(b"data: ")
            data = orjson.loads(event[6:])
            data.pop("created", None)
            found.append(data)
    return found


def settled(stream) -> bytes:
    """What the relay sends once the request is settled, before [DONE]: the
    usage chunk, when the client asked for usage."""
    return stream.close(stream.usage).removesuffix(b"data: [DONE]\n\n")


def feed_in_pieces(stream: GeminiStream, data: bytes, cuts) -> bytes:
    out, start = [], 0
    for cut in sorted(set(cuts)) + [len(data)]:
        out.append(stream.feed(data[start:cut]))
        start = cut
    return b"".join(out)


def test_a_stream_becomes_openai_chunks_then_usage():
    stream = GeminiStream(forward_usage=True)
    found = events(stream.feed(STREAM) + settled(stream))
    base = {
        "id": "chatcmpl-r1",
        "object": "chat.completion.chunk",
        "model": "gemini-2.5-flash",
    }

    def choice(delta, finish=None):
        return {
            **base,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            ],
        }

    assert found == [
        choice({"role": "assistant", "content": ""}),
        choice({"content": "Hel"}),
        choice({"content": "lo"}),
        choice({"content": "!"}),
        choice({}, "stop"),
        {
            **base,
            "choices": [],
            "usage": {
                "prompt_tokens": 120,
                "completion_tokens": 75,
                "total_tokens": 195,
                "prompt_tokens_details": {"cached_tokens": 100},
                "completion_tokens_details": {"reasoning_tokens": 45},
            },
        },
    ]
    assert stream.done
    assert "".join(stream.text) == "Hello!"
    assert stream.usage == TokenUsage(
        prompt=120, cached=100, completion=75, reasoning=45
    )
    assert stream.closing == b"data: [DONE]\n\n"


def test_the_usage_chunk_is_left_out_unless_asked_for():
    stream = GeminiStream(forward_usage=False)
    found = events(stream.feed(STREAM))
    assert all(event["choices"] for event in found)
    assert found[-1]["choices"][0]["finish_reason"] == "stop"
    assert stream.done
    assert stream.usage == TokenUsage(
        prompt=120, cached=100, completion=75, reasoning=45
    )


# Cuts inside the event framing (between CR and LF) are the ones that break
# naive parsers; uniform cuts alone rarely land there.
FRAMING = [i for i in range(len(STREAM)) if STREAM[i : i + 1] in (b"\r", b"\n")]
CUTS = st.lists(
    st.integers(min_value=0, max_value=len(STREAM)) | st.sampled_from(FRAMING),
    max_size=15,
)


@settings(max_examples=60, deadline=None)
@given(CUTS, st.sampled_from([b"\r\n", b"\n"]))
def test_any_split_of_the_bytes_gives_the_same_events(cuts, newline):
    data = STREAM if newline == b"\r\n" else STREAM.replace(b"\r\n", b"\n")
    whole, split = GeminiStream(forward_usage=True), GeminiStream(forward_usage=True)
    expected = events(whole.feed(data))
    assert events(feed_in_pieces(split, data, cuts)) == expected
    assert split.done and split.usage == whole.usage
    assert split.text == whole.text


def test_a_stream_fed_byte_by_byte_gives_the_same_events():
    stream = GeminiStream(forward_usage=True)
    out = b"".join(stream.feed(STREAM[i : i + 1]) for i in range(len(STREAM)))
    assert events(out) == events(GeminiStream(forward_usage=True).feed(STREAM))
    assert stream.done


def test_it_is_done_only_once_usage_follows_the_finish():
    stream = GeminiStream(forward_usage=True)
    finish = events(stream.feed(sse(stream_chunk({"text": "Hi"}, finish="STOP"))))
    assert finish[-1]["choices"][0]["finish_reason"] == "stop"
    assert not stream.done
    late = events(stream.feed(sse({"usageMetadata": USAGE, "responseId": "r1"})))
    assert stream.done
    late += events(settled(stream))
    assert late[0]["choices"] == [] and late[0]["usage"]["prompt_tokens"] == 120
    assert stream.feed(sse(stream_chunk({"text": "ignored"}))) == b""


def test_end_settles_a_stream_that_finished_without_later_usage():
    stream = GeminiStream(forward_usage=True)
    stream.feed(sse(stream_chunk({"text": "Hi"}, usage=EARLY_USAGE)))
    assert stream.end() == b""  # not finished: the stream was cut short
    stream.feed(sse(stream_chunk({"text": "!"}, finish="STOP")))
    usage = events(stream.end() + settled(stream))
    assert stream.done
    assert usage[0]["usage"]["prompt_tokens"] == 120


def test_streamed_function_calls_are_whole_tool_call_deltas():
    stream = GeminiStream(forward_usage=False)
    call = {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}
    found = events(
        stream.feed(
            sse(stream_chunk({"text": "Checking."}))
            + sse(stream_chunk(call, {**call, "thoughtSignature": "c2ln"}))
            + sse(stream_chunk(finish="STOP", usage=USAGE))
        )
    )
    deltas = [event["choices"][0]["delta"] for event in found]
    first, second = deltas[2]["tool_calls"], deltas[3]["tool_calls"]
    assert first[0]["index"] == 0 and second[0]["index"] == 1
    assert first[0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city":"Oslo"}',
    }
    assert second[0]["extra_content"] == {"google": {"thought_signature": "c2ln"}}
    assert found[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert stream.done


def test_an_error_chunk_becomes_an_openai_error_event():
    stream = GeminiStream(forward_usage=True)
    error = {
        "code": 503,
        "message": "The model is overloaded.",
        "status": "UNAVAILABLE",
    }
    found = events(
        stream.feed(sse(stream_chunk({"text": "Hi"})) + sse({"error": error}))
    )
    assert found[-1] == {
        "error": {
            "message": "The model is overloaded.",
            "type": "server_error",
            "param": None,
            "code": "unavailable",
        }
    }
    # The answer is incomplete: the relay reports the stream as cut short.
    assert not stream.done


def test_a_blocked_prompt_streams_a_content_filter_finish():
    stream = GeminiStream(forward_usage=False)
    chunk = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
    }
    found = events(stream.feed(sse(chunk)))
    assert found[-1]["choices"][0]["finish_reason"] == "content_filter"
    assert stream.done and stream.usage == TokenUsage(prompt=9)


# -- against the fake, over HTTP -----------------------------------------


@pytest.fixture(scope="module")
def gemini_server():
    with FakeGemini() as fake:
        yield fake


@pytest.fixture
def gemini(gemini_server):
    gemini_server.reset()
    yield gemini_server
    gemini_server.reset()


CONVERSATION = chat(
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello please"},
)
# The fake's formula: 1 per turn + 3 words, plus 3 system words.
PROMPT_TOKENS = 7
REPLY_WORDS = len(DEFAULT_REPLY.split())


def send(request: httpx.Request) -> httpx.Response:
    with httpx.Client(timeout=5) as client:
        response = client.send(request)
        response.read()
        return response


def test_an_answer_from_the_fake_comes_back_translated(gemini):
    gemini.configure(cached_tokens=4, thoughts_tokens=11)
    request = adapter.chat_request(
        channel(gemini.url(), "AIza-k"), CONVERSATION, stream=False
    )
    response = send(request)
    assert response.status_code == 200
    raw, usage = adapter.chat_response(response.content)
    body = orjson.loads(raw)
    assert body["choices"][0]["message"]["content"] == DEFAULT_REPLY
    assert body["choices"][0]["finish_reason"] == "stop"
    assert usage == TokenUsage(
        prompt=PROMPT_TOKENS, cached=4, completion=REPLY_WORDS + 11, reasoning=11
    )
    seen = gemini.last_request
    assert seen.model == "gemini-2.5-flash"
    assert seen.headers["x-goog-api-key"] == "AIza-k"
    assert seen.body["systemInstruction"] == {"parts": [{"text": "You are terse."}]}


def test_a_stream_from_the_fake_comes_back_translated(gemini):
    gemini.configure(thoughts_tokens=2)
    request = adapter.chat_request(
        channel(gemini.url()), {**CONVERSATION, "max_tokens": 3}, stream=True
    )
    stream = GeminiStream(forward_usage=True)
    out = []
    with httpx.Client(timeout=5) as client:
        response = client.send(request, stream=True)
        assert response.status_code == 200
        assert gemini.last_request.query == {"alt": "sse"}
        for data in response.iter_raw(chunk_size=5):
            out.append(stream.feed(data))
            if stream.done:
                break
        response.close()
    found = events(b"".join(out) + settled(stream))
    assert stream.done
    assert "".join(stream.text) == "Hello from the "
    assert found[-2]["choices"][0]["finish_reason"] == "length"
    assert found[-1]["usage"]["completion_tokens"] == 3 + 2
    assert stream.usage == TokenUsage(prompt=PROMPT_TOKENS, completion=5, reasoning=2)


def test_a_tool_round_trip_through_the_fake_keeps_the_signature(gemini):
    gemini.configure(function_call=True)
    first = {**CONVERSATION, "tools": [WEATHER_TOOL], "tool_choice": "required"}
    response = send(adapter.chat_request(channel(gemini.url()), first, stream=False))
    message = orjson.loads(adapter.chat_response(response.content)[0])["choices"][0]
    assert message["finish_reason"] == "tool_calls"
    (call,) = message["message"]["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": '{"query":"fake"}'}
    history = first["messages"] + [
        message["message"],
        factories.tool_message(call["id"], "Sunny"),
    ]
    gemini.configure()
    again = {**first, "messages": history}
    response = send(adapter.chat_request(channel(gemini.url()), again, stream=False))
    assert response.status_code == 200, response.text
    contents = gemini.last_request.body["contents"]
    assert contents[1]["parts"][0]["thoughtSignature"] == THOUGHT_SIGNATURE
    assert contents[2]["parts"][0]["functionResponse"] == {
        "name": "get_weather",
        "response": {"result": "Sunny"},
    }


def ask(gemini, key: str = "AIza-k") -> httpx.Response:
    return send(
        adapter.chat_request(channel(gemini.url(), key), CONVERSATION, stream=False)
    )


def test_the_fake_refuses_keys_like_google(gemini):
    no_key = ask(gemini, key="")
    assert no_key.status_code == 403
    assert no_key.json()["error"]["status"] == "PERMISSION_DENIED"
    gemini.configure(api_key="AIza-right")
    assert ask(gemini, key="AIza-right").status_code == 200
    wrong = ask(gemini, key="AIza-wrong")
    assert wrong.status_code == 400
    assert adapter.channel_fault(400, wrong.content)
    gemini.configure(status=429)
    busy = ask(gemini)
    assert busy.status_code == 429
    assert adapter.error_body(busy.content)["error"]["code"] == "resource_exhausted"


@pytest.mark.parametrize(
    "body",
    [
        {"contents": []},
        {"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]},
        {"contents": [{"role": "user", "parts": []}]},
        {"contents": [{"role": "user", "parts": [{"text": ""}]}]},
        {"contents": [{"role": "user", "parts": [{"text": "x", "fileData": {}}]}]},
        {"contents": [{"role": "user", "parts": [{"text": "x"}]}], "model": "m"},
        {
            "contents": [{"role": "user", "parts": [{"text": "x"}]}],
            "generationConfig": {"max_tokens": 5},
        },
    ],
)
def test_the_fake_refuses_bodies_google_would(gemini, body):
    response = httpx.post(
        f"{gemini.url()}/models/m:generateContent",
        headers={"x-goog-api-key": "k"},
        json=body,
    )
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


@pytest.mark.asyncio
async def test_the_relays_own_transport_reaches_the_fake(gemini):
    request = adapter.chat_request(channel(gemini.url()), CONVERSATION, stream=True)
    try:
        response = await upstream.send(request, adapter.transport())
        stream = GeminiStream(forward_usage=False)
        async for data in response.aiter_raw():
            stream.feed(data)
            if stream.done:
                break
        await response.aclose()
    finally:
        await upstream.close_transports()
    assert stream.done
    assert "".join(stream.text) == DEFAULT_REPLY
    assert stream.usage == TokenUsage(prompt=PROMPT_TOKENS, completion=REPLY_WORDS)
